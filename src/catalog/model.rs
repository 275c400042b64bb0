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

crate::text_enum! {
    /// What kind of thing a technology is (the `technologies_kind_check`
    /// constraint's values).
    pub enum TechnologyKind {
        Language,
        Framework,
        Database,
        Tool,
        Platform,
        Library,
        Runtime,
        Service,
        Cloud,
        Testing,
        Other,
    }
}

/// A category and its row's version (for `ETag` and `If-Match`).
#[derive(Debug, Clone, Serialize, crate::db::FromRow)]
pub struct VersionedCategory {
    #[serde(flatten)]
    #[from_row(flatten)]
    pub category: Category,
    #[serde(skip)]
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl crate::http::Versioned for VersionedCategory {
    fn etag(&self) -> crate::http::ETag {
        crate::http::ETag::from_timestamp(self.updated_at)
    }
}

/// A technology and its row's version (for `ETag` and `If-Match`).
#[derive(Debug, Clone, Serialize, crate::db::FromRow)]
pub struct VersionedTechnology {
    #[serde(flatten)]
    #[from_row(flatten)]
    pub technology: Technology,
    #[serde(skip)]
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl crate::http::Versioned for VersionedTechnology {
    fn etag(&self) -> crate::http::ETag {
        crate::http::ETag::from_timestamp(self.updated_at)
    }
}

/// The most a category's `sort_order` may be (and the least, negated).
pub const SORT_ORDER_MAX: i32 = 1_000_000;

/// A category as an admin writes it (the API's body, the CLI's flags).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryInput {
    /// Lowercase letters and digits, words joined by single dashes; at most
    /// 63 characters.
    #[schema(max_length = 63, pattern = r"^[a-z0-9]+(?:-[a-z0-9]+)*$", example = "microservice")]
    pub slug: String,
    /// Trimmed; 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
        example = "Microservices"
    )]
    pub name: String,
    /// At most 2000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    /// Lists are ordered by it, then by slug; -1000000 to 1000000, default 0.
    #[serde(default, deserialize_with = "crate::http::extract::whole")]
    #[schema(minimum = -1_000_000, maximum = 1_000_000)]
    pub sort_order: i32,
}

impl CategoryInput {
    /// Every problem at once, as a 422 naming the fields.
    pub fn validate(&self) -> Result<(), crate::http::ApiError> {
        let mut v = crate::http::validate::Validator::new();
        v.slug("slug", &self.slug);
        v.text("name", &self.name, 1, 200);
        v.text("description", &self.description, 0, 2000);
        v.check(
            (-SORT_ORDER_MAX..=SORT_ORDER_MAX).contains(&self.sort_order),
            "sort_order",
            "must be -1000000 to 1000000",
        );
        v.finish()
    }
}

/// Changes to a category: only the fields given change.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryPatch {
    /// A new slug (templates keep their category).
    #[schema(max_length = 63, pattern = r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
    pub slug: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "crate::http::extract::opt_whole")]
    #[schema(minimum = -1_000_000, maximum = 1_000_000)]
    pub sort_order: Option<i32>,
}

impl CategoryPatch {
    /// The category with the changes applied (then validated as a whole).
    pub fn apply(self, c: Category) -> CategoryInput {
        CategoryInput {
            slug: self.slug.unwrap_or(c.slug),
            name: self.name.unwrap_or(c.name),
            description: self.description.unwrap_or(c.description),
            sort_order: self.sort_order.unwrap_or(c.sort_order),
        }
    }
}

/// A technology as an admin writes it (the API's body, the CLI's flags).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TechnologyInput {
    /// Lowercase letters and digits, words joined by single dashes; at most
    /// 63 characters. Templates name it in their `tech_stack`.
    #[schema(max_length = 63, pattern = r"^[a-z0-9]+(?:-[a-z0-9]+)*$", example = "kotlin")]
    pub slug: String,
    /// Trimmed; 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
        example = "Kotlin"
    )]
    pub name: String,
    pub kind: TechnologyKind,
}

impl TechnologyInput {
    /// Every problem at once, as a 422 naming the fields.
    pub fn validate(&self) -> Result<(), crate::http::ApiError> {
        let mut v = crate::http::validate::Validator::new();
        v.slug("slug", &self.slug);
        v.text("name", &self.name, 1, 200);
        v.finish()
    }
}

/// Changes to a technology: only the fields given change.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TechnologyPatch {
    /// A new slug: the templates whose `tech_stack` names the old one are
    /// changed to name the new one, in the same transaction.
    #[schema(max_length = 63, pattern = r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
    pub slug: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: Option<String>,
    pub kind: Option<TechnologyKind>,
}

impl TechnologyPatch {
    /// The technology with the changes applied (then validated as a whole).
    /// A stored kind this version does not know is an error.
    pub fn apply(self, t: Technology) -> Result<TechnologyInput, crate::http::ApiError> {
        let kind = match self.kind {
            Some(kind) => kind,
            None => TechnologyKind::parse(&t.kind)
                .ok_or_else(|| crate::http::ApiError::internal(format!("unknown technology kind {:?}", t.kind)))?,
        };
        Ok(TechnologyInput { slug: self.slug.unwrap_or(t.slug), name: self.name.unwrap_or(t.name), kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::json_schema::testing::{assert_agree, pattern_of, strings};

    /// The slug patterns the document states for categories and
    /// technologies (created and renamed) are the rule `validate` checks.
    #[test]
    fn the_category_and_technology_slug_patterns_are_the_rule() {
        let accepted = |slug: &str| {
            let mut v = crate::http::validate::Validator::new();
            v.slug("slug", slug);
            v.finish().is_ok()
        };
        let random = strings("az09-A_ ", 3000, 6);
        let samples = ["microservice", "a-b-2", "-a", "a-", "a--b", "Micro", ""];
        for pattern in [
            pattern_of::<CategoryInput>("/properties/slug/pattern"),
            pattern_of::<CategoryPatch>("/properties/slug/pattern"),
            pattern_of::<TechnologyInput>("/properties/slug/pattern"),
            pattern_of::<TechnologyPatch>("/properties/slug/pattern"),
        ] {
            assert_agree(&pattern, accepted, samples.into_iter().chain(random.iter().map(String::as_str)));
        }
    }

    #[test]
    fn a_category_out_of_range_names_each_field() {
        let bad =
            CategoryInput { slug: "Bad".into(), name: " ".into(), description: String::new(), sort_order: 2_000_000 };
        match bad.validate() {
            Err(crate::http::ApiError::Invalid(errors)) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                assert_eq!(fields, ["slug", "name", "sort_order"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
