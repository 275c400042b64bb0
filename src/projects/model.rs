//! Projects, their code context, modifications and generation history as the
//! API shows them, their row mapping, and the pure rules they follow (status
//! transitions, template rendering).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::http::json_schema::AnyJson;

crate::text_enum! {
    /// The statuses a project can have. `deleted` exists in the schema for rows
    /// written by other tools; the API never shows such projects.
    pub enum ProjectStatus {
        Active,
        Archived,
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct Project {
    pub id: Uuid,
    pub owner_id: Uuid,
    /// The email of the owner's account.
    #[schema(example = "developer@example.com")]
    pub owner_email: Option<String>,
    pub name: String,
    pub description: Option<String>,
    /// Kind of project: nextjs, react, api, web_app, ...
    #[serde(rename = "type")]
    #[from_row(rename = "type")]
    pub project_type: Option<String>,
    #[schema(value_type = String, example = "active")]
    pub status: String,
    /// Slug of the template the project was made from.
    pub template: Option<String>,
    /// The container the project lives in (set at create or update).
    pub container_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    #[schema(value_type = Object)]
    pub settings: Value,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub last_deployed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl crate::http::Versioned for Project {
    fn etag(&self) -> crate::http::ETag {
        crate::http::ETag::from_timestamp(self.updated_at)
    }
}

impl crate::http::Versioned for ProjectDetail {
    fn etag(&self) -> crate::http::ETag {
        self.project.etag()
    }
}

/// The columns a [`Project`] is read from: `p` is the project, `t` its
/// template (LEFT JOIN templates.templates t ON t.id = p.template_id); the
/// owner's email is looked up by id.
pub const PROJECT_COLUMNS: &str = "p.id, p.owner_id, \
    (SELECT u.email FROM devx.users u WHERE u.id = p.owner_id) AS owner_email, p.name, p.description, p.type, p.status, t.slug AS template, \
    p.container_id, p.metadata, p.settings, p.last_deployed_at, p.created_at, p.updated_at";

/// Containers of a project by status.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct ContainerCounts {
    pub created: i64,
    pub running: i64,
    pub stopped: i64,
    pub deleted: i64,
}

/// What belongs to a project, counted.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct ProjectCounts {
    pub services: i64,
    #[from_row(flatten)]
    pub containers: ContainerCounts,
    pub deployments: i64,
    /// Chat messages.
    pub messages: i64,
    /// Live (not deleted) files.
    pub files: i64,
    /// Modifications pending or approved.
    pub open_modifications: i64,
}

/// A project with the counts of what belongs to it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct ProjectDetail {
    #[serde(flatten)]
    #[from_row(flatten)]
    pub project: Project,
    #[from_row(flatten)]
    pub counts: ProjectCounts,
}

/// `devx.user_summaries` for one user.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct UserSummary {
    pub user_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    /// Projects not deleted.
    pub project_count: i64,
    /// Running containers.
    pub active_containers: i64,
    /// Latest sign-in or change to a project or container.
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub last_activity: Option<DateTime<Utc>>,
}

/// The code context of a project (1:1).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct ProjectContext {
    pub project_id: Uuid,
    /// Path -> file content.
    #[schema(value_type = Object)]
    pub codebase: Value,
    pub dependencies: Vec<String>,
    /// Name -> value.
    #[schema(value_type = Object)]
    pub environment_vars: Value,
    #[schema(value_type = Object)]
    pub deployment_config: Value,
    /// Percent, 0 to 100.
    pub test_coverage: Option<f64>,
    /// 0 to 100.
    pub security_score: Option<f64>,
    /// 0 to 100.
    pub performance_score: Option<f64>,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub last_deployed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl crate::http::Versioned for ProjectContext {
    fn etag(&self) -> crate::http::ETag {
        crate::http::ETag::from_timestamp(self.updated_at)
    }
}

/// The columns a [`ProjectContext`] is read from (`c` is the context; the
/// scores are `numeric`, read as float8).
pub const CONTEXT_COLUMNS: &str = "c.project_id, c.codebase, c.dependencies, c.environment_vars, \
    c.deployment_config, c.test_coverage::float8 AS test_coverage, c.security_score::float8 AS security_score, \
    c.performance_score::float8 AS performance_score, c.last_deployed_at, c.created_at, c.updated_at";

crate::text_enum! {
    /// pending -> approved | rejected; approved -> applied | failed.
    pub enum ModificationStatus {
        Pending,
        Approved,
        Rejected,
        Applied,
        Failed,
    }
}

impl ModificationStatus {
    /// The statuses a modification in this status may move to.
    pub fn next(self) -> &'static [ModificationStatus] {
        use ModificationStatus::*;
        match self {
            Pending => &[Approved, Rejected],
            Approved => &[Applied, Failed],
            Rejected | Applied | Failed => &[],
        }
    }

    /// The one status from which `self` can be reached.
    pub fn from(self) -> Option<ModificationStatus> {
        use ModificationStatus::*;
        match self {
            Approved | Rejected => Some(Pending),
            Applied | Failed => Some(Approved),
            Pending => None,
        }
    }

    /// Why a modification in this status cannot move to `to`, for a 409.
    pub fn refusal(self, to: ModificationStatus) -> String {
        let next = self.next();
        if next.is_empty() {
            format!(
                "the modification is {}, which is final: it cannot become {} (or anything else)",
                self.as_str(),
                to.as_str()
            )
        } else {
            let allowed: Vec<&str> = next.iter().map(|s| s.as_str()).collect();
            format!(
                "the modification is {}; it can become {} from here, not {}",
                self.as_str(),
                allowed.join(" or "),
                to.as_str()
            )
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct Modification {
    pub id: Uuid,
    pub project_id: Uuid,
    /// What was asked for.
    pub request: String,
    pub requested_by: Option<Uuid>,
    #[schema(value_type = Object)]
    pub impact_analysis: Value,
    pub affected_files: Vec<String>,
    pub status: ModificationStatus,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub applied_at: Option<DateTime<Utc>>,
    /// Path -> new content.
    #[schema(value_type = Object)]
    pub modified_files: Value,
    #[schema(value_type = Object)]
    pub test_results: Value,
    /// When the change was requested.
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

/// The columns a [`Modification`] is read from (`m` is the modification).
pub const MODIFICATION_COLUMNS: &str = "m.id, m.project_id, m.request, m.requested_by, m.impact_analysis, \
    m.affected_files, m.status, m.applied_at, m.modified_files, m.test_results, m.created_at, m.updated_at";

crate::text_enum! {
    pub enum GenerationStatus {
        Pending,
        Running,
        Completed,
        Failed,
        Cancelled,
    }
}

impl GenerationStatus {
    pub fn is_final(self) -> bool {
        matches!(self, GenerationStatus::Completed | GenerationStatus::Failed | GenerationStatus::Cancelled)
    }

    /// The statuses a generation may move to `self` from.
    pub fn sources(self) -> &'static [GenerationStatus] {
        use GenerationStatus::*;
        match self {
            Pending => &[],
            Running => &[Pending],
            Completed | Failed | Cancelled => &[Pending, Running],
        }
    }
}

/// One run of a generator: a project or service made from a template, code
/// generated by an agent...
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct Generation {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    /// Template slug.
    pub template: Option<String>,
    pub project_id: Option<Uuid>,
    pub service_id: Option<Uuid>,
    #[schema(example = "project")]
    pub generation_type: String,
    #[schema(value_type = Object)]
    pub input_params: Value,
    /// What was produced (usually file paths).
    #[schema(value_type = Vec<AnyJson>)]
    pub output_files: Value,
    pub status: GenerationStatus,
    pub error_message: Option<String>,
    pub execution_time_ms: Option<i32>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub completed_at: Option<DateTime<Utc>>,
}

/// A generation has no `updated_at`: its status is its version, since it
/// only moves forward (pending, running, then one final status) and every
/// change moves it.
impl crate::http::Versioned for Generation {
    fn etag(&self) -> crate::http::ETag {
        crate::http::ETag::digest(self.status.as_str())
    }
}

/// The columns a [`Generation`] is read from: `g` is the generation, `t` its
/// template (LEFT JOIN).
pub const GENERATION_COLUMNS: &str = "g.id, g.user_id, t.slug AS template, g.project_id, g.service_id, g.generation_type, \
    g.input_params, g.output_files, g.status, g.error_message, g.execution_time_ms, g.created_at, g.completed_at";

/// Counts and timings of generations.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct GenerationCounts {
    pub count: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Pending or running.
    pub in_flight: i64,
    /// Percent of finished generations (completed or failed) that completed;
    /// null when none finished.
    pub success_rate: Option<f64>,
    /// Over generations with a recorded time.
    pub avg_execution_time_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GenerationTypeStats {
    pub generation_type: String,
    #[serde(flatten)]
    pub counts: GenerationCounts,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GenerationStats {
    #[serde(flatten)]
    pub total: GenerationCounts,
    /// Per generation type, by type.
    pub by_type: Vec<GenerationTypeStats>,
}

/// What a template needs to make a project.
#[derive(Debug, Clone)]
pub struct TemplateSource {
    pub id: Uuid,
    pub slug: String,
    pub files: BTreeMap<String, String>,
    pub required_vars: Vec<String>,
    /// Name -> default.
    pub optional_vars: BTreeMap<String, String>,
}

/// Replaces every `{{NAME}}` whose NAME is in `vars`, in one pass: a value
/// that itself contains `{{X}}` is copied as it is, and placeholders the
/// template does not declare are left alone.
pub fn render(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}").and_then(|end| vars.get(&after[..end]).map(|v| (end, v))) {
            Some((end, value)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                // Not a placeholder here; it may start one brace later.
                out.push('{');
                rest = &rest[start + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `my-project-2`: lowercase letters and digits in dash-separated words.
pub fn is_kebab_case(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s.split('-').all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn render_substitutes_declared_placeholders_once() {
        let v = vars(&[("PROJECT_NAME", "my-app"), ("PORT", "{{PROJECT_NAME}}")]);
        assert_eq!(render("name={{PROJECT_NAME}} port={{PORT}}", &v), "name=my-app port={{PROJECT_NAME}}");
        assert_eq!(render("{{ OTHER }} {{OTHER}} {{", &v), "{{ OTHER }} {{OTHER}} {{");
        assert_eq!(render("{{{PROJECT_NAME}}}", &v), "{my-app}");
        assert_eq!(render("", &v), "");
    }

    #[test]
    fn modification_transitions() {
        use ModificationStatus::*;
        assert_eq!(Approved.from(), Some(Pending));
        assert_eq!(Failed.from(), Some(Approved));
        assert!(Pending.next().contains(&Rejected));
        assert!(Rejected.next().is_empty());
        let msg = Pending.refusal(Applied);
        assert!(msg.contains("pending") && msg.contains("approved or rejected"), "{msg}");
        assert!(Applied.refusal(Failed).contains("final"));
    }

    #[test]
    fn project_names_are_kebab_case() {
        assert!(is_kebab_case("my-app-2"));
        assert!(!is_kebab_case("My-App") && !is_kebab_case("a--b") && !is_kebab_case("-a") && !is_kebab_case(""));
    }
}
