//! Importing existing accounts (`devx users import FILE` and
//! `POST /api/admin/users/import`): JSON lines or CSV with a header, one
//! account per record: `email`, `name`, `password_hash`, `plan` and
//! `created_at`. A hash is bcrypt (`$2a$`, `$2b$`, `$2y$`) or an argon2 PHC
//! string; a bcrypt account signs in with its old password, and its hash is
//! replaced by argon2id at that first sign-in. Every record is checked
//! before any is written: one bad record refuses the whole import, naming
//! its line and field. An email that already has an account is skipped, so
//! an import can be run again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::PlanType;
use super::secrets;
use crate::db::{DbError, Queryable};
use crate::http::ApiError;
use crate::http::validate::Validator;

/// At most this many accounts per import.
pub const MAX_RECORDS: usize = 10_000;

/// How the records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    JsonLines,
    /// A header line naming the columns, then one account per line.
    Csv,
}

impl Format {
    /// JSON lines when the first non-blank character opens an object, else CSV.
    pub fn detect(text: &str) -> Format {
        if text.trim_start().starts_with('{') { Format::JsonLines } else { Format::Csv }
    }
}

/// One account as the file gives it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    email: Option<String>,
    name: Option<String>,
    password_hash: Option<String>,
    #[serde(alias = "plan_type")]
    plan: Option<String>,
    created_at: Option<String>,
}

/// One account, checked.
#[derive(Debug, Clone)]
pub struct ImportRecord {
    /// The line it came from (1-based).
    pub line: usize,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: String,
    pub plan: PlanType,
    pub created_at: Option<DateTime<Utc>>,
}

/// What an import did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Accounts created.
    pub created: u64,
    /// Emails that already had an account, left as they were.
    pub skipped: Vec<String>,
}

/// Reads and checks every record; every problem is reported (an
/// [`ApiError::Invalid`] whose fields are `line N: field`), and none is
/// written when there is one.
pub fn parse(text: &str, format: Format) -> Result<Vec<ImportRecord>, ApiError> {
    let mut v = Validator::new();
    let raw = match format {
        Format::JsonLines => json_lines(text, &mut v),
        Format::Csv => csv_records(text, &mut v),
    };
    if raw.is_empty() && v.is_clean() {
        v.error("records", "the file holds no account");
    }
    if raw.len() > MAX_RECORDS {
        v.error("records", format!("at most {MAX_RECORDS} accounts per import (got {})", raw.len()));
    }
    let mut records = Vec::with_capacity(raw.len());
    let mut seen = std::collections::HashSet::new();
    for (line, r) in raw {
        let at = |field: &str| format!("line {line}: {field}");
        let email = r.email.as_deref().map(str::trim).unwrap_or_default().to_string();
        v.email(&at("email"), &email);
        if !seen.insert(email.to_lowercase()) {
            v.error(&at("email"), "appears twice in the file");
        }
        let name = r.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        v.opt_text(&at("name"), name.as_deref(), 1, 200);
        let hash = r.password_hash.map(|h| h.trim().to_string()).unwrap_or_default();
        v.check(
            secrets::is_known_hash(&hash),
            &at("password_hash"),
            "must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters) or an argon2 PHC string ($argon2id$...)",
        );
        let plan = match r.plan.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            None => Some(PlanType::Free),
            Some(p) => PlanType::parse(p),
        };
        v.check(plan.is_some(), &at("plan"), "must be one of free, personal, team, enterprise (or empty: free)");
        let created_at = match r.created_at.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            None => Ok(None),
            Some(c) => DateTime::parse_from_rfc3339(c).map(|t| Some(t.with_timezone(&Utc))),
        };
        v.check(created_at.is_ok(), &at("created_at"), "must be an RFC 3339 time such as 2024-01-31T12:00:00Z");
        if let (Some(plan), Ok(created_at)) = (plan, created_at) {
            records.push(ImportRecord { line, email, name, password_hash: hash, plan, created_at });
        }
    }
    v.finish()?;
    Ok(records)
}

fn json_lines(text: &str, v: &mut Validator) -> Vec<(usize, RawRecord)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<RawRecord>(line) {
            Ok(r) => out.push((n + 1, r)),
            Err(e) => v.error(
                &format!("line {}", n + 1),
                format!(
                    "is not a JSON object with email, name, password_hash, plan and created_at: {}",
                    e.to_string().split(" at line").next().unwrap_or_default()
                ),
            ),
        }
    }
    out
}

fn csv_records(text: &str, v: &mut Validator) -> Vec<(usize, RawRecord)> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(false).from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            v.error("line 1", format!("is not a CSV header: {e}"));
            return Vec::new();
        }
    };
    let known = ["email", "name", "password_hash", "plan", "plan_type", "created_at"];
    for h in &headers {
        if !known.contains(&h) {
            v.error(
                "line 1",
                format!("names an unknown column {h:?}; the columns are email, name, password_hash, plan, created_at"),
            );
        }
    }
    if !headers.iter().any(|h| h == "email") {
        v.error("line 1", "the header must name the columns, among them email and password_hash");
        return Vec::new();
    }
    let mut out = Vec::new();
    for record in reader.records() {
        match record {
            Ok(row) => {
                let line = row.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
                let mut r = RawRecord::default();
                for (h, value) in headers.iter().zip(row.iter()) {
                    let value = Some(value.to_string());
                    match h {
                        "email" => r.email = value,
                        "name" => r.name = value,
                        "password_hash" => r.password_hash = value,
                        "plan" | "plan_type" => r.plan = value,
                        "created_at" => r.created_at = value,
                        _ => {}
                    }
                }
                out.push((line, r));
            }
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                v.error(
                    &format!("line {line}"),
                    format!(
                        "is not a CSV record like the header (quote a value that holds a comma, as an argon2 hash \
                         does: \"$argon2id$v=19$m=19456,t=2,p=1$...\"): {e}"
                    ),
                );
            }
        }
    }
    out
}

/// Inserts the account unless its email has one; whether it did.
pub async fn insert(db: &impl Queryable, r: &ImportRecord) -> Result<bool, DbError> {
    let n = db
        .execute(
            "INSERT INTO devx.users (id, email, name, password_hash, plan_type, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, coalesce($6, now()), now())
             ON CONFLICT (lower(email)) DO NOTHING",
            &[&Uuid::new_v4(), &r.email, &r.name, &r.password_hash, &r.plan.as_str(), &r.created_at],
        )
        .await?;
    Ok(n > 0)
}

/// Imports checked records in the caller's transaction.
pub async fn import(db: &impl Queryable, records: &[ImportRecord]) -> Result<ImportReport, DbError> {
    let mut report = ImportReport { created: 0, skipped: Vec::new() };
    for r in records {
        if insert(db, r).await? {
            report.created += 1;
        } else {
            report.skipped.push(r.email.clone());
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT: &str = "$2b$04$abcdefghijklmnopqrstuu5S0jXKXw1N4h8ZGz0s9oI1Nqf8F8W7e";

    #[test]
    fn both_formats_read_the_same_accounts() {
        assert_eq!(BCRYPT.len(), 60);
        let jsonl = format!(
            "{{\"email\": \"a@example.com\", \"name\": \"A\", \"password_hash\": \"{BCRYPT}\", \"plan\": \"team\", \
             \"created_at\": \"2024-01-31T12:00:00Z\"}}\n\n{{\"email\": \"b@example.com\", \"password_hash\": \"{BCRYPT}\"}}\n"
        );
        let csv = format!(
            "email,name,password_hash,plan,created_at\na@example.com,A,{BCRYPT},team,2024-01-31T12:00:00Z\n\
             b@example.com,,{BCRYPT},,\n"
        );
        for (text, format) in [(jsonl.as_str(), Format::JsonLines), (csv.as_str(), Format::Csv)] {
            assert_eq!(Format::detect(text), format);
            let records = parse(text, format).unwrap();
            assert_eq!(records.len(), 2);
            assert_eq!(records[0].plan, PlanType::Team);
            assert_eq!(records[0].name.as_deref(), Some("A"));
            assert_eq!(records[0].created_at.unwrap().to_rfc3339(), "2024-01-31T12:00:00+00:00");
            assert_eq!(
                (records[1].plan, records[1].name.as_deref(), records[1].created_at),
                (PlanType::Free, None, None)
            );
        }
    }

    fn refused(result: Result<Vec<ImportRecord>, ApiError>) -> Vec<crate::http::error::FieldError> {
        match result {
            Err(ApiError::Invalid(errors)) => errors,
            other => panic!("not refused field by field: {other:?}"),
        }
    }

    #[test]
    fn every_bad_record_is_named_by_line_and_field() {
        let csv = format!(
            "email,password_hash,plan\nnot-an-email,{BCRYPT},free\nc@example.com,plaintext,gold\nC@example.com,{BCRYPT},\n"
        );
        let errors = refused(parse(&csv, Format::Csv));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["line 2: email", "line 3: password_hash", "line 3: plan", "line 4: email"]);
        let errors = refused(parse("{\"email\": \"x@example.com\", \"role\": \"admin\"}", Format::JsonLines));
        assert_eq!(errors[0].field, "line 1");
        assert!(errors[0].message.contains("role"), "{}", errors[0].message);
        let errors = refused(parse("email,password\n", Format::Csv));
        assert_eq!(errors[0].field, "line 1");
        assert_eq!(refused(parse("", Format::Csv))[0].field, "line 1");
    }
}
