//! [`Statement`]: a statement assembled from the filters a request gives,
//! with its parameters. This module owns how optional filters and optional
//! keyset cursors become SQL, for every query module.
//!
//! Why not one fixed statement whose filters switch off at run time,
//! `WHERE ($n::uuid IS NULL OR owner = $n)`: devx runs every statement
//! prepared (named, cached per connection), and once PostgreSQL settles on
//! a generic plan for a prepared statement, such an OR hides the filter from
//! the planner, so the filter's index cannot be used and the query scans (a
//! task claim took 1.3 s on the benchmark data that way). Even while it
//! keeps custom plans, every call pays for planning. A statement holding
//! only the conditions in use is one SQL text per combination of filters,
//! each with a cached plan that uses the index of every filter it has.
//!
//! The test `no_optional_parameter_ors` fails on any `$<digits> IS NULL OR`
//! (cast or not) in `src/`, so the pattern does not come back.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{DbError, FromRow, Queryable};

/// SQL and its parameters, built up condition by condition:
///
/// ```ignore
/// let mut s = Statement::default();
/// s.and("p.status <> 'deleted'");
/// s.and_some(f.owner, |owner| format!("p.owner_id = {owner}"));
/// s.and_key(f.after, |at, id| format!("(p.created_at, p.id) < ({at}, {id})"));
/// let limit = s.bind(f.limit + 1);
/// s.sql = format!("SELECT ... FROM devx.projects p {} ORDER BY ... LIMIT {limit}", s.where_clause());
/// let rows = s.query(db).await?;
/// ```
///
/// or, for the usual newest-first page on `(created_at, id)`, the last
/// three statements before the query in one:
///
/// ```ignore
/// s.newest_first("SELECT ... FROM devx.projects p", "p", f.after, f.limit);
/// ```
#[derive(Default)]
pub struct Statement<'a> {
    /// The SQL to run, set by the caller once the conditions are in.
    pub sql: String,
    pub params: Vec<Box<dyn ToSql + Sync + Send + 'a>>,
    conditions: Vec<String>,
}

impl<'a> Statement<'a> {
    /// Adds a parameter and returns its placeholder (`$n`, numbered in the
    /// order of binding).
    pub fn bind(&mut self, value: impl ToSql + Sync + Send + 'a) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    /// Adds a condition that always applies.
    pub fn and(&mut self, condition: impl Into<String>) {
        self.conditions.push(condition.into());
    }

    /// When there is a value, binds it and adds the condition `condition`
    /// makes of its placeholder; without one, adds nothing at all.
    pub fn and_some<T: ToSql + Sync + Send + 'a>(&mut self, value: Option<T>, condition: impl FnOnce(&str) -> String) {
        if let Some(value) = value {
            let placeholder = self.bind(value);
            self.conditions.push(condition(&placeholder));
        }
    }

    /// [`Statement::and_some`] for a keyset of two values, such as
    /// `(created_at, id)`: `condition` gets both placeholders.
    pub fn and_key<A, B>(&mut self, key: Option<(A, B)>, condition: impl FnOnce(&str, &str) -> String)
    where
        A: ToSql + Sync + Send + 'a,
        B: ToSql + Sync + Send + 'a,
    {
        if let Some((a, b)) = key {
            let (a, b) = (self.bind(a), self.bind(b));
            self.conditions.push(condition(&a, &b));
        }
    }

    /// Completes a list page, newest first on the keyset `(created_at, id)`
    /// of the table aliased `alias`: the rows after `after` when there is
    /// one, `limit + 1` of them (the extra row tells that a next page
    /// exists). `select` is the statement up to its `WHERE` (`SELECT ...
    /// FROM ... JOIN ...`); the conditions added so far go in the `WHERE`.
    pub fn newest_first<A, B>(&mut self, select: &str, alias: &str, after: Option<(A, B)>, limit: i64)
    where
        A: ToSql + Sync + Send + 'a,
        B: ToSql + Sync + Send + 'a,
    {
        self.and_key(after, |at, id| format!("({alias}.created_at, {alias}.id) < ({at}, {id})"));
        let limit = self.bind(limit + 1);
        let filter = match self.where_clause() {
            w if w.is_empty() => w,
            w => format!(" {w}"),
        };
        self.sql = format!("{select}{filter} ORDER BY {alias}.created_at DESC, {alias}.id DESC LIMIT {limit}");
    }

    /// `WHERE` and the conditions joined by `AND`, or nothing without one.
    pub fn where_clause(&self) -> String {
        if self.conditions.is_empty() { String::new() } else { format!("WHERE {}", self.conditions.join(" AND ")) }
    }

    /// The parameters as `Queryable` takes them.
    pub fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }

    pub async fn query(&self, db: &impl Queryable) -> Result<Vec<Row>, DbError> {
        db.query(&self.sql, &self.param_refs()).await
    }

    pub async fn query_opt(&self, db: &impl Queryable) -> Result<Option<Row>, DbError> {
        db.query_opt(&self.sql, &self.param_refs()).await
    }

    pub async fn query_one(&self, db: &impl Queryable) -> Result<Row, DbError> {
        db.query_one(&self.sql, &self.param_refs()).await
    }

    pub async fn execute(&self, db: &impl Queryable) -> Result<u64, DbError> {
        db.execute(&self.sql, &self.param_refs()).await
    }

    /// Every row, read into `T` by column name.
    pub async fn query_as<T: FromRow + Send>(&self, db: &impl Queryable) -> Result<Vec<T>, DbError> {
        db.query_as(&self.sql, &self.param_refs()).await
    }

    /// The first row, if any, read into `T` by column name.
    pub async fn query_opt_as<T: FromRow + Send>(&self, db: &impl Queryable) -> Result<Option<T>, DbError> {
        db.query_opt_as(&self.sql, &self.param_refs()).await
    }

    /// The single column of the one row.
    pub async fn query_scalar<T: for<'b> tokio_postgres::types::FromSql<'b> + Send>(
        &self,
        db: &impl Queryable,
    ) -> Result<T, DbError> {
        db.query_scalar(&self.sql, &self.param_refs()).await
    }
}

/// Whose rows a caller sees: every row (an administrator acting as one), or
/// only the rows they own. Derived from the caller once
/// (`accounts::Principal::visibility`); the one rule for a row in hand
/// ([`sees`](Self::sees), [`filter`](Self::filter)) and, for a list, in SQL
/// ([`owner`](Self::owner), [`Statement::visible_to`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    All,
    Owner(uuid::Uuid),
}

impl Visibility {
    /// Whether a row owned by `owner` is visible. A row no user owns
    /// (`None`) is visible only to those who see every row.
    pub fn sees(self, owner: impl Into<Option<uuid::Uuid>>) -> bool {
        match (self, owner.into()) {
            (Visibility::All, _) => true,
            (Visibility::Owner(me), Some(owner)) => me == owner,
            (Visibility::Owner(_), None) => false,
        }
    }

    /// The row of a lookup that returned it with its owner, if visible:
    /// `None` whether it is missing or someone else's, so that both get the
    /// same 404.
    pub fn filter<T, O: Into<Option<uuid::Uuid>>>(self, found: Option<(T, O)>) -> Option<T> {
        found.and_then(|(row, owner)| self.sees(owner).then_some(row))
    }

    /// The owner a list is restricted to, if any.
    pub fn owner(self) -> Option<uuid::Uuid> {
        match self {
            Visibility::All => None,
            Visibility::Owner(me) => Some(me),
        }
    }
}

impl<'a> Statement<'a> {
    /// Restricts the statement to the rows `v` sees, `owner_column` naming
    /// the column that holds a row's owner.
    pub fn visible_to(&mut self, v: Visibility, owner_column: &str) {
        self.and_some(v.owner(), |owner| format!("{owner_column} = {owner}"));
    }
}

/// Escapes LIKE wildcards so a search for `50%` means the text `50%`.
pub fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Where `line` holds a statement parameter tested for NULL before an OR
    /// (`$<n> IS NULL OR`, `$<n>::timestamptz IS NULL OR`, any case).
    fn optional_parameter_or(line: &str) -> bool {
        let upper = line.to_ascii_uppercase();
        let bytes = upper.as_bytes();
        for (start, _) in upper.match_indices('$') {
            let mut i = start + 1;
            let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                continue;
            }
            i += digits;
            if upper[i..].starts_with("::") {
                i += 2;
                i += bytes[i..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'[' | b']'))
                    .count();
            }
            let rest: Vec<&str> = upper[i..].split_whitespace().take(3).collect();
            if upper[i..].starts_with(char::is_whitespace) && rest == ["IS", "NULL", "OR"] {
                return true;
            }
        }
        false
    }

    #[test]
    fn placeholders_are_numbered_in_binding_order() {
        let mut s = Statement::default();
        assert_eq!(s.bind(1i32), "$1");
        assert_eq!(s.bind("two"), "$2");
        assert_eq!(s.bind(Some(3i64)), "$3");
        assert_eq!(s.params.len(), 3);
        assert_eq!(s.param_refs().len(), 3);
    }

    #[test]
    fn no_condition_no_where() {
        let mut s = Statement::default();
        s.and_some(None::<i32>, |p| format!("a = {p}"));
        s.and_key(None::<(i32, i32)>, |a, b| format!("(x, y) < ({a}, {b})"));
        assert_eq!(s.where_clause(), "");
        assert!(s.params.is_empty(), "a filter not given binds nothing");
    }

    #[test]
    fn conditions_in_use_are_joined_with_and() {
        let mut s = Statement::default();
        s.and("p.status <> 'deleted'");
        s.and_some(Some("alice"), |p| format!("p.owner = {p}"));
        s.and_some(None::<&str>, |p| format!("p.type = {p}"));
        s.and_key(Some((7i32, 8i32)), |a, b| format!("(p.created_at, p.id) < ({a}, {b})"));
        let limit = s.bind(51i64);
        assert_eq!(
            s.where_clause(),
            "WHERE p.status <> 'deleted' AND p.owner = $1 AND (p.created_at, p.id) < ($2, $3)"
        );
        assert_eq!(limit, "$4");
        assert_eq!(s.params.len(), 4);
    }

    #[test]
    fn newest_first_pages_on_the_keyset() {
        let mut s = Statement::default();
        s.newest_first("SELECT x.id FROM t x", "x", None::<(i32, i32)>, 50);
        assert_eq!(s.sql, "SELECT x.id FROM t x ORDER BY x.created_at DESC, x.id DESC LIMIT $1");
        let mut s = Statement::default();
        s.and_some(Some(1i32), |p| format!("x.owner = {p}"));
        s.newest_first("SELECT x.id FROM t x", "x", Some((2i32, 3i32)), 50);
        assert_eq!(
            s.sql,
            "SELECT x.id FROM t x WHERE x.owner = $1 AND (x.created_at, x.id) < ($2, $3) \
             ORDER BY x.created_at DESC, x.id DESC LIMIT $4"
        );
        assert_eq!(s.params.len(), 4);
    }

    #[test]
    fn one_condition_has_no_and() {
        let mut s = Statement::default();
        s.and_some(Some(1i32), |p| format!("a = {p}"));
        assert_eq!(s.where_clause(), "WHERE a = $1");
    }

    #[test]
    fn a_user_sees_their_own_rows_an_admin_all_and_an_unowned_row_only_an_admin() {
        let (me, other) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let user = Visibility::Owner(me);
        assert!(user.sees(me) && !user.sees(other) && !user.sees(None));
        assert!(Visibility::All.sees(other) && Visibility::All.sees(None));
        assert_eq!(user.filter(Some(("mine", me))), Some("mine"));
        assert_eq!(user.filter(Some(("theirs", other))), None);
        assert_eq!(user.filter(Some(("nobody's", None::<uuid::Uuid>))), None);
        assert_eq!(Visibility::All.filter(Some(("nobody's", None::<uuid::Uuid>))), Some("nobody's"));
        assert_eq!(user.filter(None::<(&str, uuid::Uuid)>), None);
        assert_eq!((user.owner(), Visibility::All.owner()), (Some(me), None));
    }

    #[test]
    fn the_pattern_is_recognized() {
        // Built with concat! so that this file holds no instance itself.
        for line in [
            concat!("WHERE ($", "1::uuid IS NULL OR owner = $1)"),
            concat!("  AND ($", "12::timestamptz IS NULL OR (a, b) < ($12, $13))"),
            concat!("AND ($", "3 is null or x = $3)"),
            concat!("AND ($", "4::text[]  IS  NULL  OR x = $4)"),
        ] {
            assert!(optional_parameter_or(line), "{line}");
        }
        for line in [
            "WHERE s.id = $1 AND (s.project_id IS NULL OR p.status <> 'deleted')",
            "AND (l.task_id IS NULL OR p.id IS NOT NULL)",
            "A keyset as `($n::timestamptz IS NULL OR ...)`",
            "WHERE x = $1 AND y IS NULL OR z",
            concat!("$", "1 IS NOT NULL OR"),
            "cost: $5",
        ] {
            assert!(!optional_parameter_or(line), "{line}");
        }
    }

    /// The invariant: no statement in `src/` switches a filter off with
    /// `$n IS NULL OR` (see the module documentation).
    #[test]
    fn no_optional_parameter_ors() {
        fn scan(root: &Path, dir: &Path, found: &mut Vec<String>) {
            let mut entries: Vec<_> =
                std::fs::read_dir(dir).expect("read src").map(|e| e.expect("entry").path()).collect();
            entries.sort();
            for path in entries {
                if path.is_dir() {
                    scan(root, &path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("read source");
                    for (n, line) in text.lines().enumerate() {
                        if optional_parameter_or(line) {
                            let file = path.strip_prefix(root).unwrap_or(&path).display();
                            found.push(format!("{file}:{}: {}", n + 1, line.trim()));
                        }
                    }
                }
            }
        }
        let mut found = Vec::new();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        scan(root, &root.join("src"), &mut found);
        assert!(
            found.is_empty(),
            "optional filters written as `$n IS NULL OR ...` (a generic plan cannot use the filter's index): \
             build the statement from the filters given with `db::Statement` (`and_some`, `and_key`) instead:\n{}",
            found.join("\n")
        );
    }
}
