//! What a file path in a project may be: relative, inside the project, one
//! way to write it. The same rule for file records, the files a
//! modification names and the files a template renders; [`FilePath`] states
//! it in the OpenAPI document.

use utoipa::openapi::schema::{ObjectBuilder, Type};

/// Longest path, in characters.
pub const MAX_CHARS: usize = 1024;
/// Longest segment (a directory's or the file's name), in characters.
pub const MAX_SEGMENT_CHARS: usize = 255;

/// [`problem`] as a regular expression: segments of characters other than
/// `/`, `\` and control characters, 1 to 255 of them, neither `.` nor `..`
/// (a segment starts with a character other than a dot, or is a dot and
/// such a character, or two dots and anything), joined by `/`.
const PATTERN: &str = concat!(
    r"^(?:[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]{0,254}",
    r"|\.[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]{0,253}",
    r"|\.\.[^/\\\x00-\x1f\x7f-\x9f]{1,253})",
    r"(?:/(?:[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]{0,254}",
    r"|\.[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]{0,253}",
    r"|\.\.[^/\\\x00-\x1f\x7f-\x9f]{1,253}))*$",
);

/// The schema of a path [`problem`] accepts (also for the keys of a map).
pub fn file_path() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).max_length(Some(MAX_CHARS)).pattern(Some(PATTERN))
}

crate::json_schema! {
    /// A file path in a project, as [`problem`] accepts it.
    FilePath = file_path().description(Some(
        "A file path relative to the project: `/`-separated segments of 1 to 255 characters, at most 1024 in all; \
         no `.` or `..` segment, no leading or trailing `/`, no backslash, no control character.",
    ));
}

/// Why `path` is not acceptable, if it is not.
pub fn problem(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("must not be empty".into());
    }
    let chars = path.chars().count();
    if chars > MAX_CHARS {
        return Some(format!("must be at most {MAX_CHARS} characters (got {chars})"));
    }
    if path.contains('\0') {
        return Some("must not contain NUL characters".into());
    }
    if path.contains('\\') {
        return Some("must use / between segments, not backslashes".into());
    }
    if path.starts_with('/') {
        return Some("must be relative to the project (no leading /)".into());
    }
    if path.ends_with('/') {
        return Some("must name a file, not end with /".into());
    }
    for segment in path.split('/') {
        match segment {
            ".." => return Some("must not contain a `..` segment".into()),
            "." => return Some("must not contain a `.` segment".into()),
            "" => return Some("must not contain empty segments (//)".into()),
            _ if segment.chars().count() > MAX_SEGMENT_CHARS => {
                return Some(format!("must not have a segment longer than {MAX_SEGMENT_CHARS} characters"));
            }
            _ => {}
        }
    }
    if path.chars().any(char::is_control) {
        return Some("must not contain control characters".into());
    }
    None
}

/// The last segment of a valid path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_paths_pass() {
        for ok in ["a", "src/main.rs", "a/b/c.d.e", "..hidden/x", "x..y", ".env", "dir/.gitignore", "..."] {
            assert_eq!(problem(ok), None, "{ok}");
        }
        assert_eq!(file_name("src/lib/mod.rs"), "mod.rs");
        assert_eq!(file_name("README.md"), "README.md");
    }

    #[test]
    fn bad_paths_say_why() {
        let cases = [
            ("", "empty"),
            ("../etc/passwd", ".."),
            ("a/../b", ".."),
            ("a/..", ".."),
            ("/etc/passwd", "relative"),
            ("a\\b", "backslash"),
            ("a\0b", "NUL"),
            ("a//b", "empty segments"),
            ("a/", "name a file"),
            ("./a", "`.`"),
            ("a\nb", "control"),
            ("a\u{85}b", "control"),
        ];
        for (path, why) in cases {
            let p = problem(path).unwrap_or_else(|| panic!("{path:?} passed"));
            assert!(p.contains(why), "{path:?}: {p}");
        }
        let long_name = "a".repeat(MAX_SEGMENT_CHARS);
        assert!(problem(&long_name).is_none());
        assert!(problem(&format!("{long_name}b")).unwrap().contains("longer than 255"));
        let deep = [long_name.as_str(); 4].join("/");
        assert_eq!(deep.chars().count(), 1023);
        assert!(problem(&deep).is_none());
        assert!(problem(&format!("{deep}/bb")).unwrap().contains("at most 1024"));
    }

    /// The pattern the document states is the rule the server checks.
    #[test]
    fn the_pattern_is_the_rule() {
        let pattern = regex::Regex::new(PATTERN).unwrap();
        let long_name = "é".repeat(MAX_SEGMENT_CHARS);
        let samples = [
            "a",
            "src/main.rs",
            "..hidden/x",
            "x..y",
            ".env",
            "...",
            "a b/c",
            "ü/ß.txt",
            "",
            "..",
            ".",
            "./a",
            "a/.",
            "a/..",
            "/a",
            "a/",
            "a//b",
            "a\\b",
            "a\nb",
            "a\u{7f}",
            "a\u{85}b",
            "a\u{a0}b",
        ];
        let long = [long_name.clone(), format!("{long_name}e"), format!("x/{long_name}"), format!(".{long_name}")];
        for path in samples.iter().copied().chain(long.iter().map(String::as_str)) {
            // Length aside, which the document states with maxLength.
            assert_eq!(pattern.is_match(path), problem(path).is_none(), "{path:?}");
        }
    }
}
