//! A person as a request names one: a user id, or the email of an account
//! (the way the source products assign work: `developer@example.com`).
//! [`resolve_person`] is the one place that turns either into a user id;
//! [`PersonRef`] is the schema of such a field.

use uuid::Uuid;

use crate::db::Queryable;
use crate::http::ApiError;
use crate::http::validate::Validator;

/// A UUID, or an email as registration takes it (the same pattern).
const PERSON_PATTERN: &str = concat!(
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    r"|[^@\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@.\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^@\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\.[^@\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@.\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])$"
);

crate::json_schema! {
    /// A person: a user id, or the email of an account.
    PersonRef = crate::http::json_schema::string()
        .max_length(Some(254))
        .pattern(Some(PERSON_PATTERN))
        .description(Some("A user id (UUID), or the email of an account (any case), e.g. developer@example.com; an email no account has is a 422 naming the field"))
        .examples([serde_json::json!("developer@example.com")]);
}

/// The user `named` names in the request field `field`: a UUID is taken as
/// it is (whether that user exists, or is one the caller may name, is the
/// caller's check, as for any id); an email is looked up without case among
/// accounts that are not closed, and one no such account has is a 422
/// naming the field (the request names someone who is not there to name;
/// an id is a reference, whose absence is a 404 like any other). Anything
/// else is a 422 naming the field too.
pub async fn resolve_person(db: &impl Queryable, field: &str, named: &str) -> Result<Uuid, ApiError> {
    let named = named.trim();
    if let Ok(id) = Uuid::try_parse(named) {
        return Ok(id);
    }
    let mut v = Validator::new();
    v.email(field, named);
    if v.finish().is_err() {
        return Err(ApiError::invalid(field, "must be a user id (UUID) or an email such as developer@example.com"));
    }
    let row = db
        .query_opt("SELECT id FROM devx.users WHERE lower(email) = lower($1) AND deleted_at IS NULL", &[&named])
        .await?;
    let found: Option<Uuid> = row.map(|row| crate::db::column(&row, "id")).transpose()?;
    found.ok_or_else(|| {
        ApiError::invalid(field, format!("no account has the email {named}: name a registered user by email or id"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::json_schema::testing::{assert_agree, strings};

    #[test]
    fn the_pattern_is_the_rule() {
        let pattern = regex::Regex::new(PERSON_PATTERN).unwrap();
        let accepted = |s: &str| {
            let mut v = Validator::new();
            v.email("x", s);
            s.len() == 36 && Uuid::try_parse(s).is_ok() || v.finish().is_ok()
        };
        let fixed = [
            "ada@example.com",
            "7f1c0c6e-2f4e-4a8b-9a51-1c7b1d2e3f40",
            "7F1C0C6E-2F4E-4A8B-9A51-1C7B1D2E3F40",
            "a@b",
            "not a person",
            "7f1c0c6e2f4e4a8b9a511c7b1d2e3f40x",
        ];
        let random = strings("ab.@ -0f\u{85}", 3000, 10);
        assert_agree(&pattern, accepted, fixed.into_iter().chain(random.iter().map(String::as_str)));
    }
}
