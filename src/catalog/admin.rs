//! Categories and technologies as administrators manage them: add, change
//! (rename too), remove. The API's handlers and the `devx catalog` command
//! both run these in a transaction of theirs, so the rules are the same
//! whichever way a change comes: slugs and fields checked (a 422 naming
//! each field), a taken slug a 409, a category or technology that templates
//! use a 409 naming them when it is removed.

use super::model::{
    CategoryInput, CategoryPatch, TechnologyInput, TechnologyPatch, VersionedCategory, VersionedTechnology,
};
use super::queries;
use crate::db::Queryable;
use crate::http::{ApiError, IfMatch, Versioned};

/// At most this many template slugs are named in a 409.
const NAMED: usize = 10;

/// "a, b and 3 more".
fn some_of(slugs: &[String]) -> String {
    let shown = slugs.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
    match slugs.len().saturating_sub(NAMED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

fn no_category(slug: &str) -> ApiError {
    ApiError::NoSuch { field: "slug".into(), detail: format!("no category has the slug {slug}") }
}

fn no_technology(slug: &str) -> ApiError {
    ApiError::NoSuch { field: "slug".into(), detail: format!("no technology has the slug {slug}") }
}

pub async fn add_category(db: &impl Queryable, input: &CategoryInput) -> Result<VersionedCategory, ApiError> {
    input.validate()?;
    Ok(queries::insert_category(db, input).await?)
}

/// Changes the category at `slug`, checked against `if_match` on its locked row.
pub async fn change_category(
    db: &impl Queryable,
    slug: &str,
    patch: CategoryPatch,
    if_match: &IfMatch,
) -> Result<VersionedCategory, ApiError> {
    let current = queries::get_category(db, slug, true).await?.ok_or_else(|| no_category(slug))?;
    let version = current.etag();
    // Bad input is a 422 whatever the If-Match: the body is judged before the precondition.
    let input = patch.apply(current.category);
    input.validate()?;
    if_match.check("category", &version)?;
    if !queries::update_category(db, slug, &input).await? {
        return Err(ApiError::internal("a locked category vanished"));
    }
    queries::get_category(db, &input.slug, false).await?.ok_or_else(|| ApiError::internal("category vanished"))
}

/// Removes a category that no template is in; one in use is a 409 naming
/// the templates.
pub async fn remove_category(db: &impl Queryable, slug: &str) -> Result<(), ApiError> {
    queries::get_category(db, slug, true).await?.ok_or_else(|| no_category(slug))?;
    let using = queries::templates_in_category(db, slug).await?;
    if !using.is_empty() {
        return Err(ApiError::Conflict {
            detail: format!(
                "the category {slug} is in use by {} template(s): {}; move them to another category or delete \
                 them first",
                using.len(),
                some_of(&using)
            ),
            field: Some("slug".into()),
        });
    }
    queries::delete_category(db, slug).await?;
    Ok(())
}

pub async fn add_technology(db: &impl Queryable, input: &TechnologyInput) -> Result<VersionedTechnology, ApiError> {
    input.validate()?;
    Ok(queries::insert_technology(db, input).await?)
}

/// Changes the technology at `slug` (a new slug is carried into templates'
/// `tech_stack`), checked against `if_match` on its locked row.
pub async fn change_technology(
    db: &impl Queryable,
    slug: &str,
    patch: TechnologyPatch,
    if_match: &IfMatch,
) -> Result<VersionedTechnology, ApiError> {
    let current = queries::get_technology(db, slug, true).await?.ok_or_else(|| no_technology(slug))?;
    let version = current.etag();
    // As for a category: the body is judged before the precondition.
    let input = patch.apply(current.technology)?;
    input.validate()?;
    if_match.check("technology", &version)?;
    if !queries::update_technology(db, slug, &input).await? {
        return Err(ApiError::internal("a locked technology vanished"));
    }
    queries::get_technology(db, &input.slug, false).await?.ok_or_else(|| ApiError::internal("technology vanished"))
}

/// Removes a technology that no template's `tech_stack` names; one in use is
/// a 409 naming the templates.
pub async fn remove_technology(db: &impl Queryable, slug: &str) -> Result<(), ApiError> {
    queries::get_technology(db, slug, true).await?.ok_or_else(|| no_technology(slug))?;
    let using = queries::templates_using_technology(db, slug).await?;
    if !using.is_empty() {
        return Err(ApiError::Conflict {
            detail: format!(
                "the technology {slug} is in the tech_stack of {} template(s): {}; take it out of them first",
                using.len(),
                some_of(&using)
            ),
            field: Some("slug".into()),
        });
    }
    queries::delete_technology(db, slug).await?;
    Ok(())
}
