//! `devx secrets rotate` and `devx secrets check`: every sealed value, in
//! bounded batches. Rotation re-seals each value that is not under the first
//! key, one short transaction per batch (audited as `system:secrets`), so it
//! can be stopped and run again; checking opens every value and counts, per
//! key id, those that open and those no configured key opens.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::queries::{self, SealedValue};
use super::{SEALED_COLUMNS, SealedColumn, SecretError, context, open_with, seal_with};
use crate::config::SecretKeys;
use crate::db::{Db, DbError};

/// The audit actor of a rotation.
pub const ACTOR: &str = "system:secrets";

/// What a rotation did to one column.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ColumnRotation {
    pub table: &'static str,
    pub column: &'static str,
    /// Values re-sealed under the first key.
    pub resealed: u64,
    /// Values left as they were because no configured key opens them, by
    /// the key id they are sealed under.
    pub unreadable: BTreeMap<String, u64>,
    pub batches: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// The id of the key everything was re-sealed under.
    pub key_id: String,
    pub columns: Vec<ColumnRotation>,
}

impl RotationReport {
    pub fn resealed(&self) -> u64 {
        self.columns.iter().map(|c| c.resealed).sum()
    }

    pub fn unreadable(&self) -> u64 {
        self.columns.iter().flat_map(|c| c.unreadable.values()).sum()
    }
}

/// What a check found in one column, by key id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ColumnCheck {
    pub table: &'static str,
    pub column: &'static str,
    /// Values that opened, by the key id they are sealed under.
    pub opened: BTreeMap<String, u64>,
    /// Values sealed under a key id `DEVX_SECRET_KEY` does not list.
    pub not_configured: BTreeMap<String, u64>,
    /// Values whose key id is listed but whose key does not open them (the
    /// key under that id changed, or the value was altered).
    pub undecryptable: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub columns: Vec<ColumnCheck>,
}

impl CheckReport {
    /// Values that cannot be read with the configured keys.
    pub fn problems(&self) -> u64 {
        self.columns.iter().flat_map(|c| c.not_configured.values().chain(c.undecryptable.values())).sum()
    }

    pub fn opened(&self) -> u64 {
        self.columns.iter().flat_map(|c| c.opened.values()).sum()
    }
}

fn open_value(keys: &SecretKeys, c: &SealedColumn, v: &SealedValue) -> Result<Vec<u8>, SecretError> {
    let key = keys.get(&v.key_id).ok_or_else(|| SecretError::UnknownKey(v.key_id.clone()))?;
    open_with(key, &context(c.table, c.column, v.id), &v.bytes)
}

/// Re-seals every sealed value that is not under the first key, `batch_size`
/// rows per transaction. A value no configured key opens is left alone and
/// counted.
pub async fn rotate(db: &Db, keys: &SecretKeys, batch_size: i64) -> Result<RotationReport, DbError> {
    let (first, key) = keys.sealing();
    let mut columns = Vec::with_capacity(SEALED_COLUMNS.len());
    for c in SEALED_COLUMNS {
        let mut done = ColumnRotation { table: c.table, column: c.column, ..ColumnRotation::default() };
        let mut after = Uuid::nil();
        loop {
            let mut client = db.client().await?;
            let tx = client.transaction_as(ACTOR).await?;
            let batch = queries::sealed_batch(&tx, c, after, Some(first), batch_size, true).await?;
            let Some(last) = batch.last() else { break };
            after = last.id;
            for v in &batch {
                let resealed = open_value(keys, c, v).and_then(|plain| {
                    seal_with(key, &context(c.table, c.column, v.id), &plain)
                        .map(|bytes| super::Sealed { key_id: first.to_string(), bytes })
                });
                match resealed {
                    Ok(sealed) => {
                        if queries::reseal(&tx, c, v.id, &v.key_id, &sealed).await? {
                            done.resealed += 1;
                        }
                    }
                    Err(_) => *done.unreadable.entry(v.key_id.clone()).or_default() += 1,
                }
            }
            tx.commit().await?;
            done.batches += 1;
        }
        columns.push(done);
    }
    Ok(RotationReport { key_id: first.to_string(), columns })
}

/// Opens every sealed value, `batch_size` rows at a time; changes nothing.
pub async fn check(db: &Db, keys: &SecretKeys, batch_size: i64) -> Result<CheckReport, DbError> {
    let mut columns = Vec::with_capacity(SEALED_COLUMNS.len());
    for c in SEALED_COLUMNS {
        let mut found = ColumnCheck { table: c.table, column: c.column, ..ColumnCheck::default() };
        let mut after = Uuid::nil();
        loop {
            let client = db.client().await?;
            let batch = queries::sealed_batch(&client, c, after, None, batch_size, false).await?;
            let Some(last) = batch.last() else { break };
            after = last.id;
            for v in &batch {
                let tally = match open_value(keys, c, v) {
                    Ok(_) => &mut found.opened,
                    Err(SecretError::UnknownKey(_)) => &mut found.not_configured,
                    Err(_) => &mut found.undecryptable,
                };
                *tally.entry(v.key_id.clone()).or_default() += 1;
            }
        }
        columns.push(found);
    }
    Ok(CheckReport { columns })
}
