//! Where migrations come from: the set embedded in the binary at build time
//! (`migrations/`), or a directory read at run time (`--dir`).
//!
//! A migration is a pair of files, `<14-digit id>_<snake_name>.up.sql` and
//! (optionally) `.down.sql`. Ids are timestamps (`YYYYMMDDHHMMSS`) and order
//! the set. An up (or down) file whose first line is `-- devx:no-transaction`
//! runs statement by statement outside a transaction.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

use super::MigrateError;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/migrations");

/// The first line that makes a script run outside a transaction.
pub const NO_TRANSACTION_DIRECTIVE: &str = "-- devx:no-transaction";

/// One migration: its scripts and what identifies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// 14-digit timestamp id, e.g. `20261124000100`.
    pub id: String,
    /// The snake_case name after the id, e.g. `foundation`.
    pub name: String,
    pub up: String,
    pub down: Option<String>,
    /// Hex sha256 of the up script (line endings normalized to `\n`).
    pub checksum: String,
    /// The up script starts with `-- devx:no-transaction`.
    pub no_transaction: bool,
}

impl Migration {
    /// `<id>_<name>.up.sql`
    pub fn up_file(&self) -> String {
        format!("{}_{}.up.sql", self.id, self.name)
    }

    /// `<id>_<name>.down.sql`
    pub fn down_file(&self) -> String {
        format!("{}_{}.down.sql", self.id, self.name)
    }
}

/// Whether a script asks to run outside a transaction.
pub fn is_no_transaction(sql: &str) -> bool {
    sql.lines().next().is_some_and(|first| first.trim() == NO_TRANSACTION_DIRECTIVE)
}

/// The checksum stored in the ledger: hex sha256 of the script with `\r\n`
/// read as `\n`, so that a checkout's line endings do not count as a change.
pub fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.replace("\r\n", "\n").as_bytes()))
}

/// A validated, ordered set of migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationSet {
    migrations: Vec<Migration>,
    origin: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// `<id>_<name>.up.sql` -> (id, name, direction); `None` with the reason otherwise.
fn parse_file_name(file: &str) -> Result<(String, String, Direction), String> {
    let (stem, direction) = if let Some(stem) = file.strip_suffix(".up.sql") {
        (stem, Direction::Up)
    } else if let Some(stem) = file.strip_suffix(".down.sql") {
        (stem, Direction::Down)
    } else {
        return Err("a migration file must end in .up.sql or .down.sql".into());
    };
    let expected = "expected <14-digit id>_<snake_case_name>.up.sql, e.g. 20261124000100_create_users.up.sql";
    let Some((id, name)) = stem.split_once('_') else {
        return Err(format!("no `_` between id and name; {expected}"));
    };
    if id.len() != 14 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the id {id:?} is not 14 digits (YYYYMMDDHHMMSS); {expected}"));
    }
    if !valid_name(name) {
        return Err(format!(
            "the name {name:?} is not snake_case (lowercase letters, digits and `_`, starting with a letter); {expected}"
        ));
    }
    Ok((id.to_string(), name.to_string(), direction))
}

/// `[a-z][a-z0-9_]*`
pub(crate) fn valid_name(name: &str) -> bool {
    name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl MigrationSet {
    /// The migrations compiled into this binary from `migrations/`.
    pub fn embedded() -> Result<MigrationSet, MigrateError> {
        let mut files = Vec::new();
        for file in EMBEDDED.files() {
            let name = file.path().to_string_lossy().into_owned();
            files.push((name.clone(), file.contents().to_vec()));
        }
        MigrationSet::from_files("embedded migrations", files)
    }

    /// The migrations in `dir` (its `*.sql` files; other files and
    /// subdirectories are ignored).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<MigrationSet, MigrateError> {
        let dir = dir.as_ref();
        let io = |source| MigrateError::Io { path: dir.to_path_buf(), source };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            if !entry.file_type().map_err(io)?.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".sql") {
                continue;
            }
            let path = entry.path();
            let contents = std::fs::read(&path).map_err(|source| MigrateError::Io { path: path.clone(), source })?;
            files.push((name, contents));
        }
        MigrationSet::from_files(dir.display().to_string(), files)
    }

    /// Builds a set from `(file name, contents)` pairs; `origin` names where
    /// they came from in messages. Every `.sql` file must be a well-named
    /// migration script; other files are ignored.
    pub fn from_files(
        origin: impl Into<String>,
        files: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Result<MigrationSet, MigrateError> {
        let origin = origin.into();
        // id -> (name, up file, up, down file, down)
        #[derive(Default)]
        struct Parts {
            name: String,
            first_file: String,
            up: Option<String>,
            down: Option<String>,
        }
        let mut by_id: BTreeMap<String, Parts> = BTreeMap::new();
        let mut files: Vec<_> = files.into_iter().filter(|(name, _)| name.ends_with(".sql")).collect();
        files.sort();
        for (file, contents) in files {
            let invalid =
                |reason: String| MigrateError::InvalidFile { file: file.clone(), origin: origin.clone(), reason };
            let (id, name, direction) = parse_file_name(&file).map_err(invalid)?;
            let text = String::from_utf8(contents).map_err(|_| invalid("is not valid UTF-8".into()))?;
            let parts = by_id.entry(id.clone()).or_default();
            if parts.name.is_empty() {
                parts.name = name.clone();
                parts.first_file = file.clone();
            } else if parts.name != name {
                return Err(MigrateError::DuplicateId {
                    id,
                    first: parts.first_file.clone(),
                    second: file,
                    origin: origin.clone(),
                });
            }
            match direction {
                Direction::Up => parts.up = Some(text),
                Direction::Down => parts.down = Some(text),
            }
        }
        let mut migrations = Vec::with_capacity(by_id.len());
        for (id, parts) in by_id {
            let Some(up) = parts.up else {
                return Err(MigrateError::InvalidFile {
                    file: parts.first_file,
                    origin,
                    reason: format!("has no matching {id}_{}.up.sql", parts.name),
                });
            };
            migrations.push(Migration {
                checksum: checksum(&up),
                no_transaction: is_no_transaction(&up),
                id,
                name: parts.name,
                up,
                down: parts.down,
            });
        }
        Ok(MigrationSet { migrations, origin })
    }

    /// Sorted by id.
    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    pub fn get(&self, id: &str) -> Option<&Migration> {
        self.migrations.binary_search_by(|m| m.id.as_str().cmp(id)).ok().map(|i| &self.migrations[i])
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.migrations.iter().map(|m| m.id.as_str())
    }

    pub fn len(&self) -> usize {
        self.migrations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty()
    }

    /// Where the set came from: `embedded migrations` or the directory.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Hex sha256 over every id and up checksum: two sets with the same
    /// fingerprint build the same schema.
    pub fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        for m in &self.migrations {
            hash.update(m.id.as_bytes());
            hash.update(b" ");
            hash.update(m.checksum.as_bytes());
            hash.update(b"\n");
        }
        hex::encode(hash.finalize())
    }
}

/// What `create` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedMigration {
    pub id: String,
    pub name: String,
    pub up_path: PathBuf,
    pub down_path: PathBuf,
}

/// Normalizes a requested migration name to snake_case (`Add users-table`
/// -> `add_users_table`).
pub fn normalize_name(raw: &str) -> Option<String> {
    let mut out = String::new();
    for ch in raw.trim().chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    valid_name(&out).then_some(out)
}

/// Writes `<id>_<name>.up.sql` and `.down.sql` into `dir` (created if
/// missing). The id is the current UTC time as `YYYYMMDDHHMMSS`, or one more
/// than the newest id already in `dir` if that is not earlier, so ids stay
/// unique and ordered. Never overwrites a file.
pub fn create(dir: &Path, raw_name: &str) -> Result<CreatedMigration, MigrateError> {
    let name = normalize_name(raw_name).ok_or_else(|| MigrateError::InvalidName { name: raw_name.to_string() })?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MigrateError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let existing = MigrationSet::from_dir(dir)?;
    let now: u64 = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string().parse().expect("14 digits");
    let newest = existing.ids().last().map(|id| id.parse::<u64>().expect("validated 14 digits"));
    let id = match newest {
        Some(n) if n >= now => n + 1,
        _ => now,
    }
    .to_string();
    let up_path = dir.join(format!("{id}_{name}.up.sql"));
    let down_path = dir.join(format!("{id}_{name}.down.sql"));
    let up = format!(
        "-- {id}_{name}: <what this migration does and why>.\n\
         -- It runs in one transaction together with its ledger entry. For statements that\n\
         -- cannot run in a transaction (CREATE INDEX CONCURRENTLY), make the first line:\n\
         -- {NO_TRANSACTION_DIRECTIVE}\n\n"
    );
    let down = format!("-- Reverts {id}_{name}.up.sql (`devx migrate down`).\n\n");
    for (path, text) in [(&up_path, up), (&down_path, down)] {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(io(path))?;
        file.write_all(text.as_bytes()).map_err(io(path))?;
    }
    Ok(CreatedMigration { id, name, up_path, down_path })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[(&str, &str)]) -> Result<MigrationSet, MigrateError> {
        MigrationSet::from_files("test", files.iter().map(|(n, c)| (n.to_string(), c.as_bytes().to_vec())))
    }

    #[test]
    fn embedded_set_is_valid() {
        let set = MigrationSet::embedded().expect("the embedded migrations are valid");
        assert!(!set.is_empty());
    }

    #[test]
    fn sorted_with_flags_and_checksums() {
        let s = set(&[
            ("20260102000000_b.up.sql", "-- devx:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);"),
            ("20260101000000_a.up.sql", "CREATE TABLE t (a int);"),
            ("20260101000000_a.down.sql", "DROP TABLE t;"),
            ("README.md", "ignored"),
        ])
        .unwrap();
        let ids: Vec<_> = s.ids().collect();
        assert_eq!(ids, ["20260101000000", "20260102000000"]);
        let a = s.get("20260101000000").unwrap();
        assert_eq!(a.down.as_deref(), Some("DROP TABLE t;"));
        assert!(!a.no_transaction);
        assert_eq!(a.checksum, checksum("CREATE TABLE t (a int);"));
        assert_eq!(a.checksum, checksum("CREATE TABLE t (a int);".replace('\n', "\r\n").as_str()));
        let b = s.get("20260102000000").unwrap();
        assert!(b.no_transaction && b.down.is_none());
        assert_eq!(s.fingerprint().len(), 64);
    }

    #[test]
    fn bad_names_are_named() {
        for bad in ["2026_a.up.sql", "20260101000000-a.up.sql", "20260101000000_Bad.up.sql", "20260101000000_a.sql"] {
            let err = set(&[(bad, "SELECT 1")]).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
        let err = set(&[("20260101000000_a.down.sql", "SELECT 1")]).unwrap_err().to_string();
        assert!(err.contains("has no matching 20260101000000_a.up.sql"), "{err}");
    }

    #[test]
    fn duplicate_ids_rejected() {
        let err = set(&[("20260101000000_a.up.sql", "SELECT 1"), ("20260101000000_b.up.sql", "SELECT 2")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("20260101000000_a.up.sql") && err.contains("20260101000000_b.up.sql"), "{err}");
    }

    #[test]
    fn fingerprint_follows_content() {
        let a = set(&[("20260101000000_a.up.sql", "SELECT 1")]).unwrap();
        let b = set(&[("20260101000000_a.up.sql", "SELECT 2")]).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn create_writes_two_files_with_increasing_ids() {
        let dir = tempfile::tempdir().unwrap();
        let first = create(dir.path(), "Add users-table").unwrap();
        assert_eq!(first.name, "add_users_table");
        let second = create(dir.path(), "second").unwrap();
        assert!(second.id > first.id);
        let s = MigrationSet::from_dir(dir.path()).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.get(&first.id).unwrap().down.is_some());
        assert!(create(dir.path(), "!!").is_err());
    }
}
