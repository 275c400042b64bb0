//! Who may touch a project. Every route under a project (and every route on
//! a row that belongs to one) asks here first, so that "another user's data
//! is a 404, exactly like a missing id" is decided in one place.

use uuid::Uuid;

use crate::accounts::Principal;
use crate::db::{DbError, Queryable};
use crate::http::ApiError;

/// A project the caller may act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectAccess {
    pub project_id: Uuid,
    pub owner_id: Uuid,
}

/// The project `id` if it exists and the caller owns it (or is an admin);
/// otherwise 404, whether it is missing or someone else's. With `lock`, the
/// row is locked `FOR UPDATE` for the rest of the transaction.
pub async fn project_for(
    db: &impl Queryable,
    principal: &Principal,
    id: Uuid,
    lock: bool,
) -> Result<ProjectAccess, ApiError> {
    find_project(db, principal, id, lock).await?.ok_or(ApiError::NotFound("project"))
}

/// [`project_for`] with the database's own error, for reads inside
/// `db_read!` (which retries on a transient `DbError`): `None` is the 404.
pub async fn find_project(
    db: &impl Queryable,
    principal: &Principal,
    id: Uuid,
    lock: bool,
) -> Result<Option<ProjectAccess>, DbError> {
    let sql = if lock {
        "SELECT owner_id FROM devx.projects WHERE id = $1 AND status <> 'deleted' FOR UPDATE"
    } else {
        PROJECT_OWNER
    };
    Ok(match db.query_scalar_opt::<Uuid>(sql, &[&id]).await? {
        Some(owner_id) if principal.can_see(owner_id) => Some(ProjectAccess { project_id: id, owner_id }),
        _ => None,
    })
}

const PROJECT_OWNER: &str = "SELECT owner_id FROM devx.projects WHERE id = $1 AND status <> 'deleted'";

/// The owner of project `id` (`None`: no such project), for a read that
/// goes out before its caller is known (`db_read_as!`); the handler decides
/// with [`ProjectAccess::seen_by`].
pub async fn project_owner(db: &impl Queryable, id: Uuid) -> Result<Option<ProjectAccess>, DbError> {
    let owner = db.query_scalar_opt::<Uuid>(PROJECT_OWNER, &[&id]).await?;
    Ok(owner.map(|owner_id| ProjectAccess { project_id: id, owner_id }))
}

impl ProjectAccess {
    /// `self` if `principal` may see it; `None` (a 404) otherwise.
    pub fn seen_by(self, principal: &Principal) -> Option<Self> {
        principal.can_see(self.owner_id).then_some(self)
    }
}
