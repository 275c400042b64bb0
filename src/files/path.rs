//! What a stored file path may be: relative, inside the project, one way to
//! write it.

/// Longest path, in characters.
pub const MAX_CHARS: usize = 1024;

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
        for ok in ["a", "src/main.rs", "a/b/c.d.e", "..hidden/x", "x..y", ".env", "dir/.gitignore"] {
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
        ];
        for (path, why) in cases {
            let p = problem(path).unwrap_or_else(|| panic!("{path:?} passed"));
            assert!(p.contains(why), "{path:?}: {p}");
        }
        assert!(problem(&"a".repeat(MAX_CHARS)).is_none());
        assert!(problem(&"a".repeat(MAX_CHARS + 1)).unwrap().contains("at most 1024"));
    }
}
