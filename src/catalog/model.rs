//! The template catalog as the API shows it, and its row mapping.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio_postgres::Row;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Complexity {
    Simple,
    Medium,
    Complex,
}

impl Complexity {
    pub fn as_str(self) -> &'static str {
        match self {
            Complexity::Simple => "simple",
            Complexity::Medium => "medium",
            Complexity::Complex => "complex",
        }
    }

    pub fn parse(s: &str) -> Option<Complexity> {
        match s {
            "simple" => Some(Complexity::Simple),
            "medium" => Some(Complexity::Medium),
            "complex" => Some(Complexity::Complex),
            _ => None,
        }
    }
}

/// A variable the user may set when generating from a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionalVar {
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

/// Columns `TemplateSummary::from_row` reads (alias `t` for templates, `c`
/// for categories).
pub const SUMMARY_COLUMNS: &str = "t.slug, t.name, coalesce(t.description, ''), c.slug, t.tech_stack, t.tags, \
    t.required_vars, t.optional_vars, t.estimated_setup_time, t.complexity, t.is_public, t.is_builtin, t.author, \
    t.usage_count, (SELECT count(*) FROM jsonb_object_keys(t.files))::int4";

impl TemplateSummary {
    pub fn from_row(row: &Row) -> TemplateSummary {
        let optional_vars: serde_json::Value = row.get(7);
        TemplateSummary {
            slug: row.get(0),
            name: row.get(1),
            description: row.get(2),
            category: row.get(3),
            tech_stack: row.get(4),
            tags: row.get(5),
            required_vars: row.get(6),
            optional_vars: serde_json::from_value(optional_vars).unwrap_or_default(),
            estimated_setup_time: row.get(8),
            complexity: Complexity::parse(row.get(9)).unwrap_or(Complexity::Medium),
            is_public: row.get(10),
            is_builtin: row.get(11),
            author: row.get(12),
            usage_count: row.get(13),
            file_count: row.get(14),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Category {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub sort_order: i32,
    /// Public templates in the category.
    #[serde(default)]
    pub template_count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Technology {
    pub slug: String,
    pub name: String,
    /// language, framework, database, runtime, tool, platform or library.
    pub kind: String,
    /// Public templates using it.
    #[serde(default)]
    pub template_count: i64,
}
