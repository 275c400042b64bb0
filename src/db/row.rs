//! Rows into types, by column name, never by position and never by panic.
//!
//! A type that a statement fills derives [`FromRow`] (postgres-from-row):
//! each field is read from the column of the same name (or
//! `#[from_row(rename = "...")]`), so adding a column to a `SELECT` cannot
//! shift another field. [`Queryable::query_as`](super::Queryable) and friends
//! decode through [`decode`], which turns a missing column or a value the
//! field cannot hold into [`DbError::Decode`] naming the column: a 500 with
//! the column in the log, not a panic.
//!
//! Statuses and other closed sets are `text` columns with a named CHECK
//! constraint; their enums get `FromSql`/`ToSql` from `crate::text_enum!`.

pub use postgres_from_row::FromRow;
use tokio_postgres::Row;

use super::DbError;

/// A row and the owner of what it belongs to (`owner_id`, read beside the
/// row's own columns), for the lookups that decide who may see it.
#[derive(Debug, FromRow)]
pub struct WithOwner<T: FromRow> {
    #[from_row(flatten)]
    pub row: T,
    pub owner_id: uuid::Uuid,
}

/// Reads one row into `T` by column name.
pub fn decode<T: FromRow>(row: &Row) -> Result<T, DbError> {
    T::try_from_row(row).map_err(DbError::decode)
}

/// Reads every row into `T` by column name.
pub fn decode_all<T: FromRow>(rows: &[Row]) -> Result<Vec<T>, DbError> {
    rows.iter().map(decode).collect()
}

/// Reads one named column, with the column named in the error.
pub fn column<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, name: &str) -> Result<T, DbError> {
    row.try_get(name).map_err(DbError::decode)
}

/// The value of a one-column row. More columns is an error: a statement
/// read this way must not be able to grow a column that shifts the value.
pub fn single<T: for<'a> tokio_postgres::types::FromSql<'a>>(row: &Row) -> Result<T, DbError> {
    match row.columns() {
        [only] => row.try_get(only.name()).map_err(DbError::decode),
        columns => Err(DbError::Decode(format!("expected one column, the statement returned {}", columns.len()))),
    }
}

#[cfg(test)]
mod tests {
    /// `Row::get` panics on a missing column or a value the type cannot
    /// hold, and a position breaks silently when a column list changes:
    /// rows are read through `FromRow`, `query_scalar` or `column` only.
    #[test]
    fn no_code_reads_a_row_with_the_panicking_or_positional_get() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![src];
        let mut found = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (n, line) in text.lines().enumerate() {
                        let positional = line.match_indices(".get(").any(|(at, _)| {
                            line[at + 5..].starts_with(|c: char| c.is_ascii_digit())
                                && (line[..at].ends_with("row")
                                    || line[..at].ends_with(')')
                                    || line[..at].ends_with(" r"))
                        });
                        if line.contains(concat!("row", ".get("))
                            || line.contains(concat!(".get", "::<_,"))
                            || positional
                        {
                            found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                        }
                    }
                }
            }
        }
        assert!(found.is_empty(), "read rows by name with FromRow / query_scalar / db::column:\n{}", found.join("\n"));
    }
}
