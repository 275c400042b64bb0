//! The `.env` file: found in the working directory or the nearest parent
//! that has one, read line by line, and every malformed line reported with
//! its number and the fix instead of silently ending the file there.
//!
//! The syntax is the usual one: `NAME=value`, an optional `export ` before
//! the name, `#` comments on their own line or after a value (` # ...`),
//! `'single'` quotes taken literally, `"double"` quotes with `\n`, `\t`,
//! `\"`, `\\` and `\$` escapes, quoted values may span lines, and `$NAME` or
//! `${NAME}` in an unquoted or double-quoted value is replaced by that
//! variable (from the environment, else from an earlier line). An unquoted
//! value may not contain spaces: `NAME=two words` is an error that shows the
//! quoted form, since shells and other loaders read it differently.

use std::path::{Path, PathBuf};

/// A malformed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based.
    pub line: usize,
    pub problem: String,
    /// The line as it should be written.
    pub fix: String,
}

/// What a `.env` file holds: its variables in file order (a later line for
/// the same name wins), and the lines that could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DotEnv {
    pub path: PathBuf,
    pub vars: Vec<(String, String)>,
    pub problems: Vec<LineProblem>,
}

impl DotEnv {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// `.env` in `dir` or its nearest ancestor that has one.
pub fn find(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().map(|d| d.join(".env")).find(|p| p.is_file())
}

/// Reads and parses the file at `path`; `env` gives the process's variables
/// for `$NAME` substitution.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<DotEnv, std::io::Error> {
    let text = std::fs::read_to_string(path)?;
    let (vars, problems) = parse(&text, env);
    Ok(DotEnv { path: path.to_path_buf(), vars, problems })
}

/// Every well-formed assignment of `text`, and a problem for each line that
/// is not one; a bad line never hides the lines after it.
pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> (Vec<(String, String)>, Vec<LineProblem>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut problems = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let number = i + 1;
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let body = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((name, rest)) = body.split_once('=') else {
            problems.push(LineProblem {
                line: number,
                // Not echoed: a stray line may be a pasted secret.
                problem: "is neither NAME=value nor a # comment".into(),
                fix: "write NAME=value, or start the line with # to make it a comment".into(),
            });
            continue;
        };
        let name = name.trim_end();
        if !valid_name(name) {
            problems.push(LineProblem {
                line: number,
                problem: format!("{name:?} is not a variable name"),
                fix: "a name is letters, digits and _, not starting with a digit: DEVX_ADDR=127.0.0.1:8080".into(),
            });
            continue;
        }
        let raw = rest.trim_start();
        let lookup = |n: &str| env(n).or_else(|| vars.iter().rev().find(|(k, _)| k == n).map(|(_, v)| v.clone()));
        let value = match raw.chars().next() {
            Some(quote @ ('\'' | '"')) => {
                // The value runs to the closing quote, maybe on a later line.
                let mut text = raw[1..].to_string();
                let mut end = closing_quote(&text, quote);
                while end.is_none() && i < lines.len() {
                    text.push('\n');
                    text.push_str(lines[i]);
                    i += 1;
                    end = closing_quote(&text, quote);
                }
                let Some(end) = end else {
                    problems.push(LineProblem {
                        line: number,
                        problem: format!("the {quote} quote opened here is never closed"),
                        fix: format!("{name}={quote}...{quote}"),
                    });
                    continue;
                };
                let after = text[end + 1..].trim();
                if !(after.is_empty() || after.starts_with('#')) {
                    problems.push(LineProblem {
                        line: number,
                        problem: format!("the value of {name} goes on after its closing quote"),
                        fix: format!("put everything inside the quotes: {name}={quote}...{quote}"),
                    });
                    continue;
                }
                let inner = &text[..end];
                if quote == '\'' { inner.to_string() } else { unescape_and_substitute(inner, &lookup) }
            }
            _ => {
                // An unquoted value ends at ` #` (a comment) or the line's end.
                let value = match raw.find(" #").or_else(|| raw.find("\t#")) {
                    Some(at) => raw[..at].trim_end(),
                    None => raw.trim_end(),
                };
                if value.contains(char::is_whitespace) {
                    // A secret's value is never echoed, even in its fix.
                    let shown = if is_secret(name) {
                        "<the value>".to_string()
                    } else {
                        value.replace('\\', "\\\\").replace('"', "\\\"")
                    };
                    problems.push(LineProblem {
                        line: number,
                        problem: format!("the value of {name} has spaces but no quotes"),
                        fix: format!("{name}=\"{shown}\""),
                    });
                    continue;
                }
                substitute(value, &lookup)
            }
        };
        vars.push((name.to_string(), value));
    }
    (vars, problems)
}

/// Names whose values are secrets (passwords, tokens, keys, URLs that may
/// carry a password).
fn is_secret(name: &str) -> bool {
    ["PASSWORD", "SECRET", "TOKEN", "KEY", "URL"].iter().any(|s| name.contains(s))
}

fn valid_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// The byte index of the quote that closes a value (a `\"` does not, in
/// double quotes).
fn closing_quote(text: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match c {
            '\\' if quote == '"' && !escaped => escaped = true,
            c if c == quote && !escaped => return Some(at),
            _ => escaped = false,
        }
    }
    None
}

fn unescape_and_substitute(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    let mut plain = String::new();
    while let Some(c) = chars.next() {
        if c != '\\' {
            plain.push(c);
            continue;
        }
        let escaped = match chars.next() {
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('$') => {
                // A literal dollar: keep it out of substitution.
                out.push_str(&substitute(&std::mem::take(&mut plain), lookup));
                out.push('$');
                continue;
            }
            Some(other) => other,
            None => '\\',
        };
        plain.push(escaped);
    }
    out.push_str(&substitute(&plain, lookup));
    out
}

/// `$NAME` and `${NAME}` replaced by the variable's value (empty if unset).
fn substitute(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
        } else {
            out.push_str(&lookup(name).unwrap_or_default());
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> (Vec<(String, String)>, Vec<LineProblem>) {
        parse(text, &|name| (name == "HOME").then(|| "/home/ada".to_string()))
    }

    fn pairs(vars: &[(String, String)]) -> Vec<(&str, &str)> {
        vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn the_usual_forms_are_read() {
        let (vars, problems) = parse_str(
            "# a comment\n\nDEVX_ADDR=127.0.0.1:9000\nexport DB_NAME=app # trailing comment\n\
             DB_PASSWORD='it is $HOME'\nDEVX_LOG=\"info,devx=debug\"\nDEVX_DATA_DIR=$HOME/devx\n\
             DEVX_CORS_ORIGINS=\"a\\nb \\$HOME ${DB_NAME}\"\nEMPTY=\nMULTI=\"one\ntwo\" # comment\n",
        );
        assert_eq!(problems, []);
        assert_eq!(
            pairs(&vars),
            [
                ("DEVX_ADDR", "127.0.0.1:9000"),
                ("DB_NAME", "app"),
                ("DB_PASSWORD", "it is $HOME"),
                ("DEVX_LOG", "info,devx=debug"),
                ("DEVX_DATA_DIR", "/home/ada/devx"),
                ("DEVX_CORS_ORIGINS", "a\nb $HOME app"),
                ("EMPTY", ""),
                ("MULTI", "one\ntwo"),
            ]
        );
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number_and_the_rest_is_still_read() {
        let (vars, problems) = parse_str("DEVX_ADDR=127.0.0.1:9000\nthis is not an assignment\nDB_NAME=app\n");
        assert_eq!(pairs(&vars), [("DEVX_ADDR", "127.0.0.1:9000"), ("DB_NAME", "app")]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 2);
        assert!(problems[0].problem.contains("neither NAME=value"), "{:?}", problems[0]);
    }

    #[test]
    fn an_unquoted_value_with_spaces_shows_the_quoted_fix() {
        let (vars, problems) = parse_str("DB_USER=app\nDB_NAME=my app\nDEVX_LOG=debug\n");
        assert_eq!(pairs(&vars), [("DB_USER", "app"), ("DEVX_LOG", "debug")]);
        assert_eq!(problems[0].line, 2);
        assert_eq!(problems[0].fix, "DB_NAME=\"my app\"");
        let (_, problems) = parse_str("DB_PASSWORD=correct horse battery\n");
        assert_eq!(problems[0].fix, "DB_PASSWORD=\"<the value>\"");
        assert!(!format!("{problems:?}").contains("horse"), "{problems:?}");
    }

    #[test]
    fn unclosed_quotes_and_bad_names_are_problems() {
        let (vars, problems) = parse_str("A='open\nB=1\n");
        assert!(vars.is_empty(), "{vars:?}");
        assert_eq!(problems[0].line, 1);
        assert!(problems[0].problem.contains("never closed"));
        let (_, problems) = parse_str("1BAD=x\nGOOD=y\nX='a' b\n");
        assert_eq!(problems.iter().map(|p| p.line).collect::<Vec<_>>(), [1, 3]);
    }
}
