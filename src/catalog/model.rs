//! The template catalog as the API shows it, and its row mapping.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio_postgres::{Error, Row};

use crate::db::FromRow;

crate::text_enum! {
    pub enum Complexity {
        Simple,
        Medium,
        Complex,
    }
}

/// A variable the user may set when generating from a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionalVar {
    #[schema(pattern = r"^[A-Z0-9_]{1,64}$")]
    pub name: String,
    pub default: String,
    pub description: String,
}

/// A template without its files (lists).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TemplateSummary {
    pub slug: String,
    pub name: String,
    pub description: String,
    /// Category slug.
    pub category: String,
    /// Technology slugs.
    pub tech_stack: Vec<String>,
    pub tags: Vec<String>,
    /// Placeholders (`{{NAME}}`) that must be given.
    pub required_vars: Vec<String>,
    pub optional_vars: Vec<OptionalVar>,
    /// Minutes.
    pub estimated_setup_time: i32,
    pub complexity: Complexity,
    pub is_public: bool,
    pub is_builtin: bool,
    pub author: Option<String>,
    pub usage_count: i32,
    /// Number of files the template creates.
    pub file_count: i32,
}

/// A template with its files (path -> content).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Template {
    #[serde(flatten)]
    pub summary: TemplateSummary,
    pub files: BTreeMap<String, String>,
}

/// The columns a [`TemplateSummary`] is read from (alias `t` for templates,
/// `c` for categories).
pub const SUMMARY_COLUMNS: &str = "t.slug, t.name, coalesce(t.description, '') AS description, c.slug AS category, \
    t.tech_stack, t.tags, t.required_vars, t.optional_vars, t.estimated_setup_time, t.complexity, t.is_public, \
    t.is_builtin, t.author, t.usage_count, (SELECT count(*) FROM jsonb_object_keys(t.files))::int4 AS file_count";

/// A [`TemplateSummary`] as stored: `optional_vars` still JSON.
#[derive(FromRow)]
struct SummaryRow {
    slug: String,
    name: String,
    description: String,
    category: String,
    tech_stack: Vec<String>,
    tags: Vec<String>,
    required_vars: Vec<String>,
    optional_vars: serde_json::Value,
    estimated_setup_time: i32,
    complexity: Complexity,
    is_public: bool,
    is_builtin: bool,
    author: Option<String>,
    usage_count: i32,
    file_count: i32,
}

impl From<SummaryRow> for TemplateSummary {
    fn from(r: SummaryRow) -> TemplateSummary {
        TemplateSummary {
            slug: r.slug,
            name: r.name,
            description: r.description,
            category: r.category,
            tech_stack: r.tech_stack,
            tags: r.tags,
            required_vars: r.required_vars,
            optional_vars: serde_json::from_value(r.optional_vars).unwrap_or_default(),
            estimated_setup_time: r.estimated_setup_time,
            complexity: r.complexity,
            is_public: r.is_public,
            is_builtin: r.is_builtin,
            author: r.author,
            usage_count: r.usage_count,
            file_count: r.file_count,
        }
    }
}

/// Reads [`SUMMARY_COLUMNS`] by name.
impl FromRow for TemplateSummary {
    fn from_row(row: &Row) -> TemplateSummary {
        SummaryRow::from_row(row).into()
    }

    fn try_from_row(row: &Row) -> Result<TemplateSummary, Error> {
        SummaryRow::try_from_row(row).map(Into::into)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct Category {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub sort_order: i32,
    /// Public templates in the category.
    #[serde(default)]
    pub template_count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct Technology {
    pub slug: String,
    pub name: String,
    /// language, framework, database, runtime, tool, platform or library.
    pub kind: String,
    /// Public templates using it.
    #[serde(default)]
    pub template_count: i64,
}
