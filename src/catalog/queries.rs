//! The SQL of the template catalog (schema `templates`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::model::{
    Category, CategoryInput, Complexity, OptionalVar, SUMMARY_COLUMNS, Technology, TechnologyInput, Template,
    TemplateSummary, VersionedCategory, VersionedTechnology,
};
use crate::db::{DbError, FromRow, Queryable, Statement, Visibility, escape_like};

#[derive(Debug, Default)]
pub struct TemplateFilter {
    pub category: Option<String>,
    pub technology: Option<String>,
    pub tag: Option<String>,
    pub complexity: Option<Complexity>,
    /// Part of the name or description, any case.
    pub q: Option<String>,
    /// Keyset: the last slug seen.
    pub after: Option<String>,
    pub limit: i64,
}

/// Which templates a caller sees: the public ones, their own, and every one
/// for an administrator. `None` is an anonymous caller: public ones only.
fn templates_seen_by(s: &mut Statement, viewer: Option<Visibility>) {
    match viewer {
        None => s.and("t.is_public"),
        Some(Visibility::All) => {}
        Some(Visibility::Owner(me)) => {
            let me = s.bind(me);
            s.and(format!("(t.is_public OR t.created_by = {me})"));
        }
    }
}

/// The templates the viewer sees, in slug order; fetches `limit + 1` rows.
pub async fn list_templates(
    db: &impl Queryable,
    viewer: Option<Visibility>,
    f: &TemplateFilter,
) -> Result<Vec<TemplateSummary>, DbError> {
    let mut s = Statement::default();
    templates_seen_by(&mut s, viewer);
    s.and_some(f.category.as_deref(), |slug| format!("c.slug = {slug}"));
    s.and_some(f.technology.as_deref(), |tech| format!("t.tech_stack @> ARRAY[{tech}::text]"));
    s.and_some(f.tag.as_deref(), |tag| format!("t.tags @> ARRAY[{tag}::text]"));
    s.and_some(f.complexity.map(Complexity::as_str), |c| format!("t.complexity = {c}"));
    s.and_some(f.q.as_deref().map(escape_like), |q| {
        format!("(t.name ILIKE '%' || {q}::text || '%' OR t.description ILIKE '%' || {q}::text || '%')")
    });
    s.and_some(f.after.as_deref(), |after| format!("t.slug > {after}"));
    let limit = s.bind(f.limit + 1);
    s.sql = format!(
        "SELECT {SUMMARY_COLUMNS}
           FROM templates.templates t JOIN templates.categories c ON c.id = t.category_id
          {}
          ORDER BY t.slug
          LIMIT {limit}",
        s.where_clause()
    );
    s.query_as(db).await
}

/// A template's summary and its files, still JSON, and its row's version.
#[derive(FromRow)]
struct TemplateRow {
    #[from_row(flatten)]
    summary: TemplateSummary,
    files: serde_json::Value,
    updated_at: DateTime<Utc>,
}

/// The template if the viewer sees it (a non-public one is missing to
/// anyone but its creator and administrators; `Some(Visibility::All)` sees
/// every one), and when its row last changed (its version). With `lock`,
/// the row stays locked `FOR UPDATE` for the rest of the transaction.
pub async fn versioned_template(
    db: &impl Queryable,
    viewer: Option<Visibility>,
    slug: &str,
    lock: bool,
) -> Result<Option<(Template, DateTime<Utc>)>, DbError> {
    let mut s = Statement::default();
    let slug = s.bind(slug.to_owned());
    s.and(format!("t.slug = {slug}"));
    templates_seen_by(&mut s, viewer);
    s.sql = format!(
        "SELECT {SUMMARY_COLUMNS}, t.files, t.updated_at
           FROM templates.templates t JOIN templates.categories c ON c.id = t.category_id
          {}{}",
        s.where_clause(),
        if lock { " FOR UPDATE OF t" } else { "" }
    );
    let Some(row) = s.query_opt_as::<TemplateRow>(db).await? else { return Ok(None) };
    let files = serde_json::from_value(row.files).unwrap_or_default();
    Ok(Some((Template { summary: row.summary, files }, row.updated_at)))
}

/// The columns a [`Category`] is read from (aliased `c`), with its number of public templates.
const CATEGORY_COLUMNS: &str = "c.slug, c.name, coalesce(c.description, '') AS description, c.sort_order,
     (SELECT count(*) FROM templates.templates t WHERE t.category_id = c.id AND t.is_public) AS template_count";

/// The columns a [`Technology`] is read from (aliased `g`), with its number of public templates.
const TECHNOLOGY_COLUMNS: &str = "g.slug, g.name, g.kind,
     (SELECT count(*) FROM templates.templates t WHERE t.tech_stack @> ARRAY[g.slug] AND t.is_public)
         AS template_count";

pub async fn list_categories(db: &impl Queryable) -> Result<Vec<Category>, DbError> {
    let sql = format!("SELECT {CATEGORY_COLUMNS} FROM templates.categories c ORDER BY c.sort_order, c.slug");
    db.query_as(&sql, &[]).await
}

pub async fn list_technologies(db: &impl Queryable) -> Result<Vec<Technology>, DbError> {
    let sql = format!("SELECT {TECHNOLOGY_COLUMNS} FROM templates.technologies g ORDER BY g.kind, g.slug");
    db.query_as(&sql, &[]).await
}

/// One category and its version; with `lock`, its row stays locked for the
/// rest of the transaction.
pub async fn get_category(db: &impl Queryable, slug: &str, lock: bool) -> Result<Option<VersionedCategory>, DbError> {
    let sql = format!(
        "SELECT {CATEGORY_COLUMNS}, c.updated_at FROM templates.categories c WHERE c.slug = $1{}",
        if lock { " FOR UPDATE OF c" } else { "" }
    );
    db.query_opt_as(&sql, &[&slug]).await
}

/// Adds a category (a taken slug is `categories_slug_key`'s unique violation).
pub async fn insert_category(db: &impl Queryable, c: &CategoryInput) -> Result<VersionedCategory, DbError> {
    let sql = "WITH c AS (
                   INSERT INTO templates.categories (slug, name, description, sort_order) VALUES ($1, $2, $3, $4)
                   RETURNING id, slug, name, description, sort_order, updated_at
               )
               SELECT c.slug, c.name, coalesce(c.description, '') AS description, c.sort_order,
                      0::int8 AS template_count, c.updated_at
                 FROM c";
    db.query_one_as(sql, &[&c.slug, &c.name.trim(), &c.description.trim(), &c.sort_order]).await
}

/// Replaces the category at `slug` with `c` (which may rename it); `false`
/// when there is none.
pub async fn update_category(db: &impl Queryable, slug: &str, c: &CategoryInput) -> Result<bool, DbError> {
    let changed = db
        .execute(
            "UPDATE templates.categories SET slug = $2, name = $3, description = $4, sort_order = $5
              WHERE slug = $1",
            &[&slug, &c.slug, &c.name.trim(), &c.description.trim(), &c.sort_order],
        )
        .await?;
    Ok(changed > 0)
}

/// The slugs of the templates (public or not) in a category, in slug order.
pub async fn templates_in_category(db: &impl Queryable, slug: &str) -> Result<Vec<String>, DbError> {
    let rows = db
        .query(
            "SELECT t.slug FROM templates.templates t JOIN templates.categories c ON c.id = t.category_id
              WHERE c.slug = $1 ORDER BY t.slug",
            &[&slug],
        )
        .await?;
    rows.iter().map(crate::db::row::single).collect()
}

/// Removes a category no template is in; `false` when there is none. (A
/// template in it makes the foreign key refuse: check
/// [`templates_in_category`] first, with the row locked.)
pub async fn delete_category(db: &impl Queryable, slug: &str) -> Result<bool, DbError> {
    Ok(db.execute("DELETE FROM templates.categories WHERE slug = $1", &[&slug]).await? > 0)
}

/// One technology and its version; with `lock`, its row stays locked for
/// the rest of the transaction.
pub async fn get_technology(
    db: &impl Queryable,
    slug: &str,
    lock: bool,
) -> Result<Option<VersionedTechnology>, DbError> {
    let sql = format!(
        "SELECT {TECHNOLOGY_COLUMNS}, g.updated_at FROM templates.technologies g WHERE g.slug = $1{}",
        if lock { " FOR UPDATE OF g" } else { "" }
    );
    db.query_opt_as(&sql, &[&slug]).await
}

/// Adds a technology (a taken slug is `technologies_slug_key`'s unique violation).
pub async fn insert_technology(db: &impl Queryable, t: &TechnologyInput) -> Result<VersionedTechnology, DbError> {
    let sql = "WITH g AS (
                   INSERT INTO templates.technologies (slug, name, kind) VALUES ($1, $2, $3)
                   RETURNING slug, name, kind, updated_at
               )
               SELECT g.slug, g.name, g.kind, 0::int8 AS template_count, g.updated_at FROM g";
    db.query_one_as(sql, &[&t.slug, &t.name.trim(), &t.kind.as_str()]).await
}

/// Replaces the technology at `slug` with `t`; a new slug is carried into
/// the `tech_stack` of every template that named the old one. `false` when
/// there is no such technology. Run it in a transaction.
pub async fn update_technology(db: &impl Queryable, slug: &str, t: &TechnologyInput) -> Result<bool, DbError> {
    let changed = db
        .execute(
            "UPDATE templates.technologies SET slug = $2, name = $3, kind = $4 WHERE slug = $1",
            &[&slug, &t.slug, &t.name.trim(), &t.kind.as_str()],
        )
        .await?;
    if changed > 0 && t.slug != slug {
        db.execute(
            "UPDATE templates.templates SET tech_stack = array_replace(tech_stack, $1, $2)
              WHERE tech_stack @> ARRAY[$1::text]",
            &[&slug, &t.slug],
        )
        .await?;
    }
    Ok(changed > 0)
}

/// The slugs of the templates (public or not) whose `tech_stack` names a technology.
pub async fn templates_using_technology(db: &impl Queryable, slug: &str) -> Result<Vec<String>, DbError> {
    let rows = db
        .query(
            "SELECT t.slug FROM templates.templates t WHERE t.tech_stack @> ARRAY[$1::text] ORDER BY t.slug",
            &[&slug],
        )
        .await?;
    rows.iter().map(crate::db::row::single).collect()
}

/// Removes a technology; `false` when there is none.
pub async fn delete_technology(db: &impl Queryable, slug: &str) -> Result<bool, DbError> {
    Ok(db.execute("DELETE FROM templates.technologies WHERE slug = $1", &[&slug]).await? > 0)
}

/// A template as written by an admin or the built-in seed.
pub struct TemplateWrite<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub category: &'a str,
    pub files: &'a BTreeMap<String, String>,
    pub required_vars: &'a [String],
    pub optional_vars: &'a [OptionalVar],
    pub tech_stack: &'a [String],
    pub tags: &'a [String],
    pub estimated_setup_time: i32,
    pub complexity: Complexity,
    pub is_public: bool,
    pub is_builtin: bool,
    pub author: Option<&'a str>,
    pub created_by: Option<uuid::Uuid>,
}

/// Inserts a template; `Ok(None)` when the category does not exist. With
/// `skip_existing`, a template whose slug exists is left as it is (the
/// built-in seed never overwrites an admin's edits).
pub async fn insert_template(
    db: &impl Queryable,
    t: &TemplateWrite<'_>,
    skip_existing: bool,
) -> Result<Option<()>, DbError> {
    let files = serde_json::to_value(t.files).map_err(|e| DbError::InvalidValue(e.to_string()))?;
    let optional_vars = serde_json::to_value(t.optional_vars).map_err(|e| DbError::InvalidValue(e.to_string()))?;
    let conflict = if skip_existing { "ON CONFLICT (slug) DO NOTHING" } else { "" };
    let sql = format!(
        "INSERT INTO templates.templates
                (slug, name, description, category_id, files, required_vars, optional_vars, tech_stack, tags,
                 estimated_setup_time, complexity, is_public, is_builtin, author, created_by)
         SELECT $1, $2, $3, c.id, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15
           FROM templates.categories c WHERE c.slug = $4
         {conflict}
         RETURNING 1"
    );
    let category_exists = db.query_opt("SELECT 1 FROM templates.categories WHERE slug = $1", &[&t.category]).await?;
    if category_exists.is_none() {
        return Ok(None);
    }
    db.query_opt(
        &sql,
        &[
            &t.slug,
            &t.name,
            &t.description,
            &t.category,
            &files,
            &t.required_vars,
            &optional_vars,
            &t.tech_stack,
            &t.tags,
            &t.estimated_setup_time,
            &t.complexity.as_str(),
            &t.is_public,
            &t.is_builtin,
            &t.author,
            &t.created_by,
        ],
    )
    .await?;
    Ok(Some(()))
}

/// Replaces the template at `slug` with `t` (which may rename it). `None`
/// when there is no such template or no such category.
pub async fn replace_template(db: &impl Queryable, slug: &str, t: &TemplateWrite<'_>) -> Result<Option<()>, DbError> {
    let files = serde_json::to_value(t.files).map_err(|e| DbError::InvalidValue(e.to_string()))?;
    let optional_vars = serde_json::to_value(t.optional_vars).map_err(|e| DbError::InvalidValue(e.to_string()))?;
    let row = db
        .query_opt(
            "UPDATE templates.templates t
                SET slug = $2, name = $3, description = $4, category_id = c.id, files = $6, required_vars = $7,
                    optional_vars = $8, tech_stack = $9, tags = $10, estimated_setup_time = $11, complexity = $12,
                    is_public = $13, author = $14
               FROM templates.categories c
              WHERE t.slug = $1 AND c.slug = $5
             RETURNING 1",
            &[
                &slug,
                &t.slug,
                &t.name,
                &t.description,
                &t.category,
                &files,
                &t.required_vars,
                &optional_vars,
                &t.tech_stack,
                &t.tags,
                &t.estimated_setup_time,
                &t.complexity.as_str(),
                &t.is_public,
                &t.author,
            ],
        )
        .await?;
    Ok(row.map(|_| ()))
}

pub async fn delete_template(db: &impl Queryable, slug: &str) -> Result<bool, DbError> {
    Ok(db.execute("DELETE FROM templates.templates WHERE slug = $1", &[&slug]).await? > 0)
}

pub async fn upsert_category(db: &impl Queryable, c: &Category) -> Result<(), DbError> {
    db.execute(
        "INSERT INTO templates.categories (slug, name, description, sort_order) VALUES ($1, $2, $3, $4)
         ON CONFLICT (slug) DO NOTHING",
        &[&c.slug, &c.name, &c.description, &c.sort_order],
    )
    .await?;
    Ok(())
}

pub async fn upsert_technology(db: &impl Queryable, t: &Technology) -> Result<(), DbError> {
    db.execute(
        "INSERT INTO templates.technologies (slug, name, kind) VALUES ($1, $2, $3) ON CONFLICT (slug) DO NOTHING",
        &[&t.slug, &t.name, &t.kind],
    )
    .await?;
    Ok(())
}
