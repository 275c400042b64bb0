//! The migration engine (placeholder: being written).
// TEMPORARY lead stubs until the engine lands.
pub async fn prepare_for_serve(
    _config: &crate::config::Config,
    _target: &tokio_postgres::Config,
) -> Result<(), crate::db::DbError> {
    Ok(())
}
pub async fn pending_ids(_db: &impl crate::db::Queryable) -> Result<Vec<String>, crate::db::DbError> {
    Ok(vec![])
}
pub async fn applied_count(_db: &impl crate::db::Queryable) -> Result<usize, crate::db::DbError> {
    Ok(0)
}
