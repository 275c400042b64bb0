//! Splits a SQL script into statements, for migrations that run outside a
//! transaction (`-- devx:no-transaction`): PostgreSQL runs a multi-statement
//! query string in one implicit transaction, which `CREATE INDEX
//! CONCURRENTLY` and friends refuse, so such a script is sent one statement
//! at a time.
//!
//! A semicolon ends a statement unless it is inside a string (`'..'`,
//! `E'..'` with backslash escapes), a quoted identifier (`".."`), a
//! dollar-quoted body (`$$..$$`, `$tag$..$tag$`), a comment (`-- ..`,
//! nested `/* .. */`), parentheses, or a SQL-standard function body
//! (`BEGIN ATOMIC .. END`), as psql decides.

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement from its first significant character (comments before
    /// it excluded) up to, not including, its semicolon.
    pub sql: &'a str,
    /// Byte offset of `sql` in the script.
    pub offset: usize,
    /// 1-based line of the script where `sql` starts.
    pub line: usize,
}

/// The statements of `script`, in order; empty and comment-only pieces are
/// left out.
pub fn split(script: &str) -> Vec<Statement<'_>> {
    let bytes = script.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Start of the current statement's first significant character.
    let mut start: Option<usize> = None;
    let mut parens = 0usize;
    let mut atomic = 0usize;
    let mut prev_word: Option<String> = None;

    fn finish<'a>(script: &'a str, start: &mut Option<usize>, end: usize, out: &mut Vec<Statement<'a>>) {
        if let Some(s) = start.take() {
            let sql = script[s..end].trim_end();
            if !sql.is_empty() {
                out.push(Statement { sql, offset: s, line: line_of(script, s) });
            }
        }
    }

    while i < bytes.len() {
        let c = bytes[i];
        // Comments never start a statement.
        if c == b'-' && bytes.get(i + 1) == Some(&b'-') {
            i = skip_line_comment(bytes, i);
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            i = skip_block_comment(bytes, i);
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b';' && parens == 0 && atomic == 0 {
            finish(script, &mut start, i, &mut out);
            prev_word = None;
            i += 1;
            continue;
        }
        if start.is_none() {
            start = Some(i);
        }
        let ident_before = i > 0 && is_ident_byte(bytes[i - 1]);
        match c {
            b'\'' => {
                let escapes = i > 0 && matches!(bytes[i - 1], b'e' | b'E') && !(i > 1 && is_ident_byte(bytes[i - 2]));
                i = skip_quoted(bytes, i, b'\'', escapes);
                prev_word = None;
            }
            b'"' => {
                i = skip_quoted(bytes, i, b'"', false);
                prev_word = None;
            }
            b'$' if !ident_before => match dollar_tag(bytes, i) {
                Some(tag_len) => {
                    i = skip_dollar_body(bytes, i, tag_len);
                    prev_word = None;
                }
                None => i += 1,
            },
            b'(' => {
                parens += 1;
                i += 1;
            }
            b')' => {
                parens = parens.saturating_sub(1);
                i += 1;
            }
            _ if is_ident_start(c) && !ident_before => {
                let end = i + bytes[i..].iter().take_while(|b| is_ident_byte(**b)).count();
                let word = script[i..end].to_ascii_uppercase();
                match word.as_str() {
                    "ATOMIC" if prev_word.as_deref() == Some("BEGIN") => atomic += 1,
                    "CASE" if atomic > 0 => atomic += 1,
                    "END" if atomic > 0 => atomic -= 1,
                    _ => {}
                }
                prev_word = Some(word);
                i = end;
            }
            _ => i += 1,
        }
    }
    finish(script, &mut start, bytes.len(), &mut out);
    out
}

/// 1-based line number of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// 1-based (line, column) of the 1-based character position `position` (as
/// PostgreSQL reports an error position) in `text`.
pub fn char_position_to_line_col(text: &str, position: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (n, ch) in text.chars().enumerate() {
        if n + 1 >= position {
            break;
        }
        if ch == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn skip_line_comment(bytes: &[u8], i: usize) -> usize {
    bytes[i..].iter().position(|b| *b == b'\n').map_or(bytes.len(), |p| i + p + 1)
}

/// PostgreSQL block comments nest.
fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// Skips a quoted string or identifier starting at `i` (the opening quote);
/// a doubled quote is an escaped one, and with `escapes` so is `\'`.
fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    i += 1;
    while i < bytes.len() {
        let b = bytes[i];
        if escapes && b == b'\\' {
            i += 2;
        } else if b == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// The length of the dollar-quote delimiter (`$$` = 2, `$body$` = 6) starting
/// at `i`, if one starts there (`$1` is a parameter, not a quote).
fn dollar_tag(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if bytes.get(j).is_some_and(|b| is_ident_start(*b)) {
        while bytes.get(j).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b >= 0x80) {
            j += 1;
        }
    }
    (bytes.get(j) == Some(&b'$')).then_some(j + 1 - i)
}

fn skip_dollar_body(bytes: &[u8], i: usize, tag_len: usize) -> usize {
    let tag = &bytes[i..i + tag_len];
    let body = i + tag_len;
    bytes[body..].windows(tag_len).position(|w| w == tag).map_or(bytes.len(), |p| body + p + tag_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(script: &str) -> Vec<&str> {
        split(script).into_iter().map(|s| s.sql).collect()
    }

    #[test]
    fn plain_statements() {
        assert_eq!(sqls("SELECT 1; SELECT 2;\nSELECT 3"), vec!["SELECT 1", "SELECT 2", "SELECT 3"]);
        assert!(sqls("  ;; \n ; ").is_empty());
    }

    #[test]
    fn semicolons_in_strings_and_identifiers() {
        assert_eq!(
            sqls("INSERT INTO t VALUES ('a;b', 'it''s; fine'); SELECT \"we;ird\"\"col\" FROM t;"),
            vec!["INSERT INTO t VALUES ('a;b', 'it''s; fine')", "SELECT \"we;ird\"\"col\" FROM t"]
        );
        assert_eq!(sqls(r"SELECT E'a\';b'; SELECT 2"), vec![r"SELECT E'a\';b'", "SELECT 2"]);
        // Without the E prefix a backslash is an ordinary character.
        assert_eq!(sqls(r"SELECT 'a\'; SELECT 2"), vec![r"SELECT 'a\'", "SELECT 2"]);
    }

    #[test]
    fn dollar_quotes() {
        let script = "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  PERFORM 1;\n  RETURN 2;\nEND;\n$$;\n\
                      CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $body$ SELECT '$$;' $body$;\n\
                      SELECT $1::int, a$b FROM t;";
        let got = sqls(script);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[0].ends_with("END;\n$$"));
        assert!(got[1].ends_with("$body$ SELECT '$$;' $body$"));
        assert_eq!(got[2], "SELECT $1::int, a$b FROM t");
    }

    #[test]
    fn comments() {
        let script = "-- first; not a statement\nSELECT 1; /* block; /* nested; */ still; */ SELECT 2 -- trailing;\n;\n-- only a comment;";
        assert_eq!(sqls(script), vec!["SELECT 1", "SELECT 2 -- trailing;"]);
    }

    #[test]
    fn parentheses_and_begin_atomic() {
        let script = "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END; SELECT 2; END;\nSELECT (1);";
        let got = sqls(script);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got[0].ends_with("SELECT 2; END"));
        assert_eq!(got[1], "SELECT (1)");
    }

    #[test]
    fn offsets_and_lines() {
        let script = "-- devx:no-transaction\n\nCREATE INDEX CONCURRENTLY i ON t (a);\n  DROP INDEX x;";
        let got = split(script);
        assert_eq!(got[0].line, 3);
        assert_eq!(&script[got[0].offset..got[0].offset + 6], "CREATE");
        assert_eq!(got[1].line, 4);
        assert_eq!(got[1].sql, "DROP INDEX x");
    }

    #[test]
    fn positions_to_lines() {
        let text = "SELECT 1;\nSELECT é FROM x;";
        assert_eq!(char_position_to_line_col(text, 1), (1, 1));
        assert_eq!(char_position_to_line_col(text, 11), (2, 1));
        // Characters, not bytes: `FROM` is at character 20.
        assert_eq!(char_position_to_line_col(text, 20), (2, 10));
    }
}
