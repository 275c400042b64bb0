//! The template catalog (schema `templates`): categories,
//! technologies and project templates with their starter files. `builtin`
//! is the catalog shipped in the binary, `queries` the SQL, `admin` the
//! writes of categories and technologies the API and `devx catalog` share,
//! `routes` the HTTP handlers (public reads, admin writes, built-in fallback).

pub mod admin;
pub mod builtin;
pub mod model;
pub mod queries;
mod routes;

pub use routes::routes;

use crate::db::{DbError, Queryable};

/// Loads the built-in catalog into the database: categories, technologies
/// and templates that are missing are added; existing ones (perhaps edited
/// by an admin) are left alone. Returns the number of templates added.
pub async fn seed_builtin(db: &impl Queryable) -> Result<usize, DbError> {
    let catalog = builtin::catalog();
    for category in &catalog.categories {
        queries::upsert_category(db, category).await?;
    }
    for technology in &catalog.technologies {
        queries::upsert_technology(db, technology).await?;
    }
    let before: i64 = db.query_scalar("SELECT count(*) FROM templates.templates", &[]).await?;
    for t in &catalog.templates {
        let s = &t.summary;
        let write = queries::TemplateWrite {
            slug: &s.slug,
            name: &s.name,
            description: &s.description,
            category: &s.category,
            files: &t.files,
            required_vars: &s.required_vars,
            optional_vars: &s.optional_vars,
            tech_stack: &s.tech_stack,
            tags: &s.tags,
            estimated_setup_time: s.estimated_setup_time,
            complexity: s.complexity,
            is_public: true,
            is_builtin: true,
            author: s.author.as_deref(),
            created_by: None,
        };
        queries::insert_template(db, &write, true).await?;
    }
    let after: i64 = db.query_scalar("SELECT count(*) FROM templates.templates", &[]).await?;
    Ok(usize::try_from(after - before).unwrap_or(0))
}
