//! The SQL of projects, code contexts, modifications and generation history.
//! Small functions taking `&impl Queryable` so that handlers compose them in
//! one transaction. Lists whose filters are optional are built from only the
//! filters given ([`Statement`]), so that every prepared plan can use the
//! index of each filter it has.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::model::{
    CONTEXT_COLUMNS, GENERATION_COLUMNS, Generation, GenerationCounts, GenerationStats, GenerationStatus,
    GenerationTypeStats, MODIFICATION_COLUMNS, Modification, ModificationStatus, PROJECT_COLUMNS, Project,
    ProjectContext, ProjectDetail, TemplateSource, UserSummary,
};
use crate::catalog::model::OptionalVar;
use crate::db::{DbError, FromRow, Queryable, Statement, escape_like};

/// Keyset position in a newest-first list: (created_at, id) of the last row seen.
pub type After = Option<(DateTime<Utc>, Uuid)>;

// ---------------------------------------------------------------- projects

#[derive(Debug, Default, Clone)]
pub struct ProjectFilter {
    /// Only this owner's projects (`None`: everyone's, for admins).
    pub owner: Option<Uuid>,
    /// `?owner_id=`: only this user's projects, within what the caller
    /// sees (someone else's, for a non-admin: none).
    pub owner_id: Option<Uuid>,
    pub status: Option<String>,
    pub project_type: Option<String>,
    /// Template slug.
    pub template: Option<String>,
    /// Part of the name, any case.
    pub q: Option<String>,
    /// Projects whose code context's codebase contains this JSON object
    /// (`@>`, answered by the GIN index on `project_contexts.codebase`).
    pub codebase_contains: Option<Value>,
    /// Projects whose dependencies include this one (`@> ARRAY[..]`, GIN).
    pub dependency: Option<String>,
    pub after: After,
    pub limit: i64,
}

impl ProjectFilter {
    /// Whether the page is read down an index of bounded cost whatever the
    /// data (one owner's projects, or everyone's newest first, with no
    /// filter that may skip many rows), so it may share a connection.
    pub fn walks_an_index(&self) -> bool {
        let narrow = self.owner.is_some() || self.owner_id.is_some();
        let skipping = self.q.is_some() || self.codebase_contains.is_some() || self.dependency.is_some();
        let selective = self.status.is_some() || self.project_type.is_some() || self.template.is_some();
        !skipping && (narrow || !selective)
    }
}

/// The statement `list_projects` runs (public so that its plan can be
/// inspected): newest first, `limit + 1` rows, deleted projects never.
pub fn list_projects_statement(f: &ProjectFilter) -> Statement<'_> {
    let mut s = Statement::default();
    s.and("p.status <> 'deleted'");
    s.and_some(f.owner, |owner| format!("p.owner_id = {owner}"));
    s.and_some(f.owner_id.filter(|id| f.owner != Some(*id)), |owner| format!("p.owner_id = {owner}"));
    s.and_some(f.status.as_deref(), |status| format!("p.status = {status}"));
    s.and_some(f.project_type.as_deref(), |t| format!("p.type = {t}"));
    s.and_some(f.template.as_deref(), |slug| {
        format!("p.template_id = (SELECT id FROM templates.templates WHERE slug = {slug})")
    });
    s.and_some(f.q.as_deref().map(escape_like), |q| format!("p.name ILIKE '%' || {q}::text || '%'"));
    let mut context = Vec::new();
    if let Some(doc) = &f.codebase_contains {
        context.push(format!("pc.codebase @> {}::jsonb", s.bind(doc)));
    }
    if let Some(dep) = &f.dependency {
        context.push(format!("pc.dependencies @> ARRAY[{}::text]", s.bind(dep)));
    }
    if !context.is_empty() {
        s.and(format!(
            "EXISTS (SELECT 1 FROM devx.project_contexts pc WHERE pc.project_id = p.id AND {})",
            context.join(" AND ")
        ));
    }
    let select = format!(
        "SELECT {PROJECT_COLUMNS} FROM devx.projects p LEFT JOIN templates.templates t ON t.id = p.template_id"
    );
    s.newest_first(&select, "p", f.after, f.limit);
    s
}

pub async fn list_projects(db: &impl Queryable, f: &ProjectFilter) -> Result<Vec<Project>, DbError> {
    list_projects_statement(f).query_as(db).await
}

pub struct NewProject<'a> {
    pub owner_id: Uuid,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub project_type: Option<&'a str>,
    pub template_id: Option<Uuid>,
    pub container_id: Option<Uuid>,
    pub metadata: &'a Value,
    pub settings: &'a Value,
}

pub async fn insert_project(db: &impl Queryable, p: &NewProject<'_>) -> Result<Project, DbError> {
    let sql = format!(
        "WITH p AS (
            INSERT INTO devx.projects (owner_id, name, description, type, template_id, metadata, settings,
                                       container_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            RETURNING *)
         SELECT {PROJECT_COLUMNS} FROM p LEFT JOIN templates.templates t ON t.id = p.template_id"
    );
    db.query_one_as(
        &sql,
        &[
            &p.owner_id,
            &p.name,
            &p.description,
            &p.project_type,
            &p.template_id,
            &p.metadata,
            &p.settings,
            &p.container_id,
        ],
    )
    .await
}

/// When the project's row last changed (its version), read in the caller's
/// transaction, which should hold the row's lock.
pub async fn project_updated_at(db: &impl Queryable, id: Uuid) -> Result<Option<DateTime<Utc>>, DbError> {
    db.query_scalar_opt("SELECT updated_at FROM devx.projects WHERE id = $1", &[&id]).await
}

/// The project with the counts of what belongs to it, whoever owns it: a
/// read sends it with its caller's credential lookup (one round trip) and
/// checks the owner on the row (`db_read_as!`).
pub async fn project_detail(db: &impl Queryable, id: Uuid) -> Result<Option<ProjectDetail>, DbError> {
    let sql = format!(
        "SELECT {PROJECT_COLUMNS},
                (SELECT count(*) FROM devx.services s WHERE s.project_id = p.id) AS services,
                c.created, c.running, c.stopped, c.deleted,
                (SELECT count(*) FROM devx.deployments d WHERE d.project_id = p.id) AS deployments,
                (SELECT count(*) FROM devx.chat_messages m WHERE m.project_id = p.id) AS messages,
                (SELECT count(*) FROM devx.file_storage f WHERE f.project_id = p.id AND NOT f.is_deleted) AS files,
                (SELECT count(*) FROM devx.modifications x
                  WHERE x.project_id = p.id AND x.status IN ('pending', 'approved')) AS open_modifications
           FROM devx.projects p
           LEFT JOIN templates.templates t ON t.id = p.template_id
          CROSS JOIN LATERAL (
                SELECT count(*) FILTER (WHERE k.status = 'created') AS created,
                       count(*) FILTER (WHERE k.status = 'running') AS running,
                       count(*) FILTER (WHERE k.status = 'stopped') AS stopped,
                       count(*) FILTER (WHERE k.status = 'deleted') AS deleted
                  FROM devx.containers k WHERE k.project_id = p.id) c
          WHERE p.id = $1 AND p.status <> 'deleted'"
    );
    db.query_opt_as(&sql, &[&id]).await
}

/// Changes to a project: `None` leaves a field as it is; for the clearable
/// ones `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct ProjectChange<'a> {
    pub name: Option<&'a str>,
    pub description: Option<Option<&'a str>>,
    pub project_type: Option<Option<&'a str>>,
    pub status: Option<&'a str>,
    pub metadata: Option<&'a Value>,
    pub settings: Option<&'a Value>,
    pub container_id: Option<Option<Uuid>>,
}

pub async fn update_project(db: &impl Queryable, id: Uuid, c: &ProjectChange<'_>) -> Result<(), DbError> {
    db.execute(
        "UPDATE devx.projects x
            SET name = coalesce($2, x.name),
                description = CASE WHEN $3 THEN $4 ELSE x.description END,
                type = CASE WHEN $5 THEN $6 ELSE x.type END,
                status = coalesce($7, x.status),
                metadata = coalesce($8, x.metadata),
                settings = coalesce($9, x.settings),
                container_id = CASE WHEN $10 THEN $11 ELSE x.container_id END
          WHERE x.id = $1",
        &[
            &id,
            &c.name,
            &c.description.is_some(),
            &c.description.flatten(),
            &c.project_type.is_some(),
            &c.project_type.flatten(),
            &c.status,
            &c.metadata,
            &c.settings,
            &c.container_id.is_some(),
            &c.container_id.flatten(),
        ],
    )
    .await?;
    Ok(())
}

/// A container a project may name as the one it lives in: the owner who
/// sees it (its project's, or its own without a project) and whether it is
/// deleted. `None`: no such container, or its project is deleted.
pub async fn container_for_project(db: &impl Queryable, id: Uuid) -> Result<Option<(Uuid, bool)>, DbError> {
    let row = db
        .query_opt(
            "SELECT coalesce(p.owner_id, c.owner_id) AS owner_id, c.status = 'deleted' AS deleted
               FROM devx.containers c LEFT JOIN devx.projects p ON p.id = c.project_id
              WHERE c.id = $1 AND (c.project_id IS NULL OR p.status <> 'deleted')
                FOR KEY SHARE OF c",
            &[&id],
        )
        .await?;
    row.map(|r| Ok((crate::db::row::column(&r, "owner_id")?, crate::db::row::column(&r, "deleted")?))).transpose()
}

/// Deletes the project; everything that belongs to it goes with it (the
/// foreign keys cascade), history rows lose the link.
pub async fn delete_project(db: &impl Queryable, id: Uuid) -> Result<bool, DbError> {
    Ok(db.execute("DELETE FROM devx.projects WHERE id = $1", &[&id]).await? > 0)
}

pub async fn user_summary(db: &impl Queryable, user_id: Uuid) -> Result<Option<UserSummary>, DbError> {
    db.query_opt_as(
        "SELECT user_id, email, name, project_count, active_containers, last_activity
           FROM devx.user_summaries WHERE user_id = $1",
        &[&user_id],
    )
    .await
}

// ---------------------------------------------------------------- templates

/// A template's row, before its JSON is read into a [`TemplateSource`].
#[derive(FromRow)]
struct TemplateRow {
    id: Uuid,
    slug: String,
    files: Value,
    required_vars: Vec<String>,
    optional_vars: Value,
}

/// A template the caller may use: public ones, the caller's own, or any for
/// an admin.
pub async fn usable_template(
    db: &impl Queryable,
    slug: &str,
    user_id: Uuid,
    is_admin: bool,
) -> Result<Option<TemplateSource>, DbError> {
    let row: Option<TemplateRow> = db
        .query_opt_as(
            "SELECT id, slug, files, required_vars, optional_vars FROM templates.templates
              WHERE slug = $1 AND (is_public OR $2 OR created_by = $3)",
            &[&slug, &is_admin, &user_id],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let optional: Vec<OptionalVar> = serde_json::from_value(row.optional_vars).unwrap_or_default();
    Ok(Some(TemplateSource {
        id: row.id,
        slug: row.slug,
        files: serde_json::from_value(row.files).map_err(|e| DbError::InvalidValue(format!("template files: {e}")))?,
        required_vars: row.required_vars,
        optional_vars: optional.into_iter().map(|v| (v.name, v.default)).collect(),
    }))
}

pub async fn count_template_use(db: &impl Queryable, template_id: Uuid) -> Result<(), DbError> {
    db.execute("UPDATE templates.templates SET usage_count = usage_count + 1 WHERE id = $1", &[&template_id]).await?;
    Ok(())
}

// ---------------------------------------------------------------- code context

/// A project's code context; with `lock`, its row stays locked `FOR UPDATE`
/// for the rest of the transaction.
pub async fn get_context(db: &impl Queryable, project_id: Uuid, lock: bool) -> Result<Option<ProjectContext>, DbError> {
    let sql = format!(
        "SELECT {CONTEXT_COLUMNS} FROM devx.project_contexts c WHERE c.project_id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    db.query_opt_as(&sql, &[&project_id]).await
}

/// The code context of a new project: its files, nothing else yet.
pub async fn insert_context(db: &impl Queryable, project_id: Uuid, codebase: &Value) -> Result<(), DbError> {
    db.execute("INSERT INTO devx.project_contexts (project_id, codebase) VALUES ($1, $2)", &[&project_id, codebase])
        .await?;
    Ok(())
}

/// A whole code context, as `PUT` writes it.
#[derive(Debug, Clone)]
pub struct ContextWrite {
    pub codebase: Value,
    pub dependencies: Vec<String>,
    pub environment_vars: Value,
    pub deployment_config: Value,
    pub test_coverage: Option<f64>,
    pub security_score: Option<f64>,
    pub performance_score: Option<f64>,
}

/// Creates or replaces the project's code context.
pub async fn put_context(db: &impl Queryable, project_id: Uuid, c: &ContextWrite) -> Result<ProjectContext, DbError> {
    let sql = format!(
        "INSERT INTO devx.project_contexts AS c
                (project_id, codebase, dependencies, environment_vars, deployment_config,
                 test_coverage, security_score, performance_score)
         VALUES ($1, $2, $3, $4, $5, $6::float8, $7::float8, $8::float8)
         ON CONFLICT (project_id) DO UPDATE
            SET codebase = EXCLUDED.codebase, dependencies = EXCLUDED.dependencies,
                environment_vars = EXCLUDED.environment_vars, deployment_config = EXCLUDED.deployment_config,
                test_coverage = EXCLUDED.test_coverage, security_score = EXCLUDED.security_score,
                performance_score = EXCLUDED.performance_score
         RETURNING {CONTEXT_COLUMNS}"
    );
    db.query_one_as(
        &sql,
        &[
            &project_id,
            &c.codebase,
            &c.dependencies,
            &c.environment_vars,
            &c.deployment_config,
            &c.test_coverage,
            &c.security_score,
            &c.performance_score,
        ],
    )
    .await
}

/// A JSON merge of one object column: `set`'s keys are written over the
/// stored ones, `remove`'s keys are dropped.
#[derive(Debug, Clone)]
pub struct ObjectMerge {
    pub set: Value,
    pub remove: Vec<String>,
}

impl Default for ObjectMerge {
    fn default() -> Self {
        ObjectMerge { set: Value::Object(Default::default()), remove: Vec::new() }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ContextPatch {
    pub codebase: ObjectMerge,
    pub environment_vars: ObjectMerge,
    pub deployment_config: ObjectMerge,
    /// Replaces the list (a merge patch replaces arrays).
    pub dependencies: Option<Vec<String>>,
    pub test_coverage: Option<Option<f64>>,
    pub security_score: Option<Option<f64>>,
    pub performance_score: Option<Option<f64>>,
}

/// Merges `p` into the project's code context (created empty first if the
/// project has none), in one statement: concurrent patches of different
/// keys both land.
pub async fn patch_context(db: &impl Queryable, project_id: Uuid, p: &ContextPatch) -> Result<ProjectContext, DbError> {
    db.execute(
        "INSERT INTO devx.project_contexts (project_id) VALUES ($1) ON CONFLICT (project_id) DO NOTHING",
        &[&project_id],
    )
    .await?;
    let sql = format!(
        "UPDATE devx.project_contexts c
            SET codebase = (c.codebase || $2::jsonb) - $3::text[],
                environment_vars = (c.environment_vars || $4::jsonb) - $5::text[],
                deployment_config = (c.deployment_config || $6::jsonb) - $7::text[],
                dependencies = coalesce($8::text[], c.dependencies),
                test_coverage = CASE WHEN $9 THEN $10::float8 ELSE c.test_coverage END,
                security_score = CASE WHEN $11 THEN $12::float8 ELSE c.security_score END,
                performance_score = CASE WHEN $13 THEN $14::float8 ELSE c.performance_score END
          WHERE c.project_id = $1
         RETURNING {CONTEXT_COLUMNS}"
    );
    db.query_one_as(
        &sql,
        &[
            &project_id,
            &p.codebase.set,
            &p.codebase.remove,
            &p.environment_vars.set,
            &p.environment_vars.remove,
            &p.deployment_config.set,
            &p.deployment_config.remove,
            &p.dependencies,
            &p.test_coverage.is_some(),
            &p.test_coverage.flatten(),
            &p.security_score.is_some(),
            &p.security_score.flatten(),
            &p.performance_score.is_some(),
            &p.performance_score.flatten(),
        ],
    )
    .await
}

// ---------------------------------------------------------------- modifications

pub struct NewModification<'a> {
    pub project_id: Uuid,
    pub request: &'a str,
    pub requested_by: Uuid,
    pub impact_analysis: &'a Value,
    pub affected_files: &'a [String],
}

pub async fn insert_modification(db: &impl Queryable, m: &NewModification<'_>) -> Result<Modification, DbError> {
    let sql = format!(
        "INSERT INTO devx.modifications AS m (project_id, request, requested_by, impact_analysis, affected_files)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING {MODIFICATION_COLUMNS}"
    );
    db.query_one_as(&sql, &[&m.project_id, &m.request, &m.requested_by, &m.impact_analysis, &m.affected_files]).await
}

/// A project's modifications, newest first; `limit + 1` rows.
pub async fn list_modifications(
    db: &impl Queryable,
    project_id: Uuid,
    status: Option<ModificationStatus>,
    after: After,
    limit: i64,
) -> Result<Vec<Modification>, DbError> {
    let mut s = Statement::default();
    let project_id = s.bind(project_id);
    s.and(format!("m.project_id = {project_id}"));
    s.and_some(status.map(ModificationStatus::as_str), |status| format!("m.status = {status}"));
    s.newest_first(&format!("SELECT {MODIFICATION_COLUMNS} FROM devx.modifications m"), "m", after, limit);
    s.query_as(db).await
}

pub async fn get_modification(db: &impl Queryable, id: Uuid) -> Result<Option<Modification>, DbError> {
    let sql = format!("SELECT {MODIFICATION_COLUMNS} FROM devx.modifications m WHERE m.id = $1");
    db.query_opt_as(&sql, &[&id]).await
}

/// What a transition writes besides the status.
#[derive(Debug, Default)]
pub struct TransitionData {
    pub modified_files: Option<Value>,
    pub test_results: Option<Value>,
}

/// Moves the modification from `from` to `to` if it is still in `from`:
/// of two concurrent transitions, exactly one finds it there. `None` when it
/// was not (it moved, or does not exist).
pub async fn transition_modification(
    db: &impl Queryable,
    id: Uuid,
    from: ModificationStatus,
    to: ModificationStatus,
    data: &TransitionData,
) -> Result<Option<Modification>, DbError> {
    let sql = format!(
        "UPDATE devx.modifications m
            SET status = $3,
                applied_at = CASE WHEN $3 = 'applied' THEN now() ELSE m.applied_at END,
                modified_files = coalesce($4, m.modified_files),
                test_results = coalesce($5, m.test_results)
          WHERE m.id = $1 AND m.status = $2
         RETURNING {MODIFICATION_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&id, &from.as_str(), &to.as_str(), &data.modified_files, &data.test_results]).await
}

// ---------------------------------------------------------------- generations

fn generation_select(from: &str) -> String {
    format!("SELECT {GENERATION_COLUMNS} FROM {from} g LEFT JOIN templates.templates t ON t.id = g.template_id")
}

pub struct NewGeneration<'a> {
    pub user_id: Uuid,
    pub template_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub service_id: Option<Uuid>,
    pub generation_type: &'a str,
    pub input_params: &'a Value,
    pub output_files: &'a Value,
    pub status: GenerationStatus,
    pub error_message: Option<&'a str>,
    pub execution_time_ms: Option<i32>,
}

pub async fn insert_generation(db: &impl Queryable, g: &NewGeneration<'_>) -> Result<Generation, DbError> {
    let sql = format!(
        "WITH g AS (
            INSERT INTO devx.generation_history
                   (user_id, template_id, project_id, service_id, generation_type, input_params, output_files,
                    status, error_message, execution_time_ms, completed_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $11 THEN now() END)
            RETURNING *)
         {}",
        generation_select("g")
    );
    db.query_one_as(
        &sql,
        &[
            &g.user_id,
            &g.template_id,
            &g.project_id,
            &g.service_id,
            &g.generation_type,
            &g.input_params,
            &g.output_files,
            &g.status.as_str(),
            &g.error_message,
            &g.execution_time_ms,
            &g.status.is_final(),
        ],
    )
    .await
}

/// One generation; with `lock`, its row stays locked `FOR UPDATE` for the
/// rest of the transaction.
pub async fn get_generation(db: &impl Queryable, id: Uuid, lock: bool) -> Result<Option<Generation>, DbError> {
    let sql = format!(
        "{} WHERE g.id = $1{}",
        generation_select("devx.generation_history"),
        if lock { " FOR UPDATE OF g" } else { "" }
    );
    db.query_opt_as(&sql, &[&id]).await
}

#[derive(Debug, Default, Clone)]
pub struct GenerationFilter {
    /// Only this user's generations (`None`: everyone's, for admins).
    pub user: Option<Uuid>,
    pub generation_type: Option<String>,
    pub status: Option<GenerationStatus>,
    /// Template slug.
    pub template: Option<String>,
    pub project: Option<Uuid>,
    pub after: After,
    pub limit: i64,
}

pub fn list_generations_statement(f: &GenerationFilter) -> Statement<'_> {
    let mut s = Statement::default();
    s.and_some(f.user, |user| format!("g.user_id = {user}"));
    s.and_some(f.generation_type.as_deref(), |t| format!("g.generation_type = {t}"));
    s.and_some(f.status.map(GenerationStatus::as_str), |status| format!("g.status = {status}"));
    s.and_some(f.template.as_deref(), |slug| {
        format!("g.template_id = (SELECT id FROM templates.templates WHERE slug = {slug})")
    });
    s.and_some(f.project, |project| format!("g.project_id = {project}"));
    s.newest_first(&generation_select("devx.generation_history"), "g", f.after, f.limit);
    s
}

/// Newest first; `limit + 1` rows.
pub async fn list_generations(db: &impl Queryable, f: &GenerationFilter) -> Result<Vec<Generation>, DbError> {
    list_generations_statement(f).query_as(db).await
}

/// How a generation ends (or starts running).
#[derive(Debug)]
pub struct GenerationOutcome<'a> {
    pub status: GenerationStatus,
    pub error_message: Option<&'a str>,
    pub output_files: Option<&'a Value>,
    /// Measured by the caller; without it a final status records the time
    /// since the generation was created.
    pub execution_time_ms: Option<i32>,
}

/// Moves the generation to `o.status` if it is in one of the statuses that
/// may lead there; `None` otherwise (or when it does not exist).
pub async fn finish_generation(
    db: &impl Queryable,
    id: Uuid,
    o: &GenerationOutcome<'_>,
) -> Result<Option<Generation>, DbError> {
    let sql = format!(
        "WITH g AS (
            UPDATE devx.generation_history x
               SET status = $2,
                   error_message = coalesce($3, x.error_message),
                   output_files = coalesce($4, x.output_files),
                   execution_time_ms = CASE WHEN $5
                       THEN coalesce($6, least(2147483647, greatest(0, extract(epoch FROM now() - x.created_at) * 1000))::int4)
                       ELSE coalesce($6, x.execution_time_ms) END,
                   completed_at = CASE WHEN $5 THEN now() ELSE x.completed_at END
             WHERE x.id = $1 AND x.status = ANY($7::text[])
            RETURNING x.*)
         {}",
        generation_select("g")
    );
    let sources: Vec<&str> = o.status.sources().iter().map(|s| s.as_str()).collect();
    db.query_opt_as(
        &sql,
        &[
            &id,
            &o.status.as_str(),
            &o.error_message,
            &o.output_files,
            &o.status.is_final(),
            &o.execution_time_ms,
            &sources,
        ],
    )
    .await
}

/// One row of [`generation_stats`]: the total (`is_total`, no type) or one
/// generation type's figures.
#[derive(FromRow)]
struct GenerationStatsRow {
    is_total: bool,
    generation_type: Option<String>,
    #[from_row(flatten)]
    counts: GenerationCounts,
}

/// Totals and per-type figures over the user's generations (everyone's
/// when `user` is `None`).
pub async fn generation_stats(db: &impl Queryable, user: Option<Uuid>) -> Result<GenerationStats, DbError> {
    let filter = if user.is_some() { "WHERE g.user_id = $1" } else { "WHERE $1::uuid IS NULL" };
    let sql = format!(
        "SELECT GROUPING(g.generation_type) = 1 AS is_total, g.generation_type,
                count(*) AS count,
                count(*) FILTER (WHERE g.status = 'completed') AS completed,
                count(*) FILTER (WHERE g.status = 'failed') AS failed,
                count(*) FILTER (WHERE g.status = 'cancelled') AS cancelled,
                count(*) FILTER (WHERE g.status IN ('pending', 'running')) AS in_flight,
                round(100.0 * count(*) FILTER (WHERE g.status = 'completed')
                      / nullif(count(*) FILTER (WHERE g.status IN ('completed', 'failed')), 0), 2)::float8
                    AS success_rate,
                avg(g.execution_time_ms)::float8 AS avg_execution_time_ms
           FROM devx.generation_history g
          {filter}
          GROUP BY ROLLUP (g.generation_type)
          ORDER BY g.generation_type NULLS FIRST"
    );
    let rows: Vec<GenerationStatsRow> = db.query_as(&sql, &[&user]).await?;
    let mut total = None;
    let mut by_type = Vec::new();
    for row in rows {
        if row.is_total {
            total = Some(row.counts);
        } else {
            // The column is NOT NULL; only the ROLLUP total has no type.
            let generation_type = row
                .generation_type
                .ok_or_else(|| DbError::Decode("generation_type is null in a per-type row".into()))?;
            by_type.push(GenerationTypeStats { generation_type, counts: row.counts });
        }
    }
    let total = total.unwrap_or(GenerationCounts {
        count: 0,
        completed: 0,
        failed: 0,
        cancelled: 0,
        in_flight: 0,
        success_rate: None,
        avg_execution_time_ms: None,
    });
    Ok(GenerationStats { total, by_type })
}

/// The owner of a service, if it exists.
pub async fn service_owner(db: &impl Queryable, id: Uuid) -> Result<Option<Uuid>, DbError> {
    db.query_scalar_opt("SELECT owner_id FROM devx.services WHERE id = $1", &[&id]).await
}

/// The id of a template by slug, if the caller may use it.
pub async fn usable_template_id(
    db: &impl Queryable,
    slug: &str,
    user_id: Uuid,
    is_admin: bool,
) -> Result<Option<Uuid>, DbError> {
    db.query_scalar_opt(
        "SELECT id FROM templates.templates WHERE slug = $1 AND (is_public OR $2 OR created_by = $3)",
        &[&slug, &is_admin, &user_id],
    )
    .await
}
