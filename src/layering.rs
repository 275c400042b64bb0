//! The layers of the crate, and the test that keeps imports pointing down.
//!
//! A module may use modules of lower layers. Capabilities (one layer) may use
//! each other, as long as no two of them use each other, directly or around
//! a loop. `app`, the composition root, is used by nothing but `cli`.

/// Lowest first. Every top-level module of the crate is in exactly one layer.
const LAYERS: &[&[&str]] = &[
    // Closed sets of strings (statuses, modes) as enums; how answers write
    // timestamps.
    &["text_enum", "timestamp"],
    // Settings, read once.
    &["config"],
    // The data-access core, and where the database server is.
    &["db", "embedded"],
    // The migration engine; metrics' registry (it reads migration state).
    &["migrate"],
    &["metrics", "diagnostics"],
    // The HTTP kit every capability builds on.
    &["http"],
    // The shared schedule of periodic jobs (once per period across processes).
    &["jobs"],
    // Capabilities: vertical slices of the product.
    &[
        "accounts",
        "catalog",
        "projects",
        "runtime",
        "chat",
        "files",
        "agents",
        "admin",
        "retention",
        "health",
        "dashboard",
    ],
    // The composition root.
    &["app"],
    // Commands.
    &["cli"],
];

const CAPABILITIES: usize = 7;

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use super::{CAPABILITIES, LAYERS};

    fn layer_of(module: &str) -> Option<usize> {
        LAYERS.iter().position(|layer| layer.contains(&module))
    }

    /// Every `crate::<module>` a top-level module mentions (in `use` lines and
    /// in paths written inline), from its files, comments excluded.
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![src.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let relative = path.strip_prefix(&src).unwrap();
                let first = relative.components().next().unwrap().as_os_str().to_string_lossy();
                let module = first.trim_end_matches(".rs").to_string();
                if matches!(module.as_str(), "lib" | "main" | "layering") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines().map(str::trim_start).filter(|l| !l.starts_with("//")) {
                    for (at, _) in line.match_indices("crate::") {
                        let rest = &line[at + "crate::".len()..];
                        let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                        // Macros are exported at the crate root: `crate::db_read!` belongs to `db`,
                        // `crate::text_enum!` to its own module.
                        let name = if rest[name.len()..].starts_with('!') && name != "text_enum" {
                            "db".to_string()
                        } else {
                            name
                        };
                        if !name.is_empty() && name != module {
                            found.entry(module.clone()).or_default().insert(name);
                        }
                    }
                }
            }
        }
        found
    }

    #[test]
    fn every_module_is_in_one_layer() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for entry in std::fs::read_dir(src).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().trim_end_matches(".rs").to_string();
            if matches!(name.as_str(), "lib" | "main" | "layering") || name.ends_with(".sql") {
                continue;
            }
            let layers = LAYERS.iter().filter(|l| l.contains(&name.as_str())).count();
            assert_eq!(layers, 1, "src/{name} must be in exactly one layer of src/layering.rs (it is in {layers})");
        }
    }

    #[test]
    fn imports_point_down_the_layers() {
        let mut wrong = Vec::new();
        let imports = imports();
        for (module, uses) in &imports {
            let Some(mine) = layer_of(module) else { continue };
            for used in uses {
                let Some(theirs) = layer_of(used) else {
                    wrong.push(format!("{module} uses crate::{used}, which is in no layer"));
                    continue;
                };
                let peer_capabilities = mine == CAPABILITIES && theirs == CAPABILITIES;
                if theirs > mine || (theirs == mine && !peer_capabilities) {
                    wrong.push(format!("{module} (layer {mine}) uses {used} (layer {theirs})"));
                }
            }
        }
        assert!(wrong.is_empty(), "imports that point up or sideways:\n{}", wrong.join("\n"));
    }

    #[test]
    fn capabilities_do_not_import_each_other_in_a_loop() {
        let imports = imports();
        let capabilities = LAYERS[CAPABILITIES];
        // Depth-first search for a cycle among capabilities.
        fn visit<'a>(
            module: &'a str,
            imports: &'a BTreeMap<String, BTreeSet<String>>,
            capabilities: &[&str],
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) -> Option<String> {
            if let Some(at) = path.iter().position(|m| *m == module) {
                return Some(format!("{} -> {module}", path[at..].join(" -> ")));
            }
            if done.contains(module) {
                return None;
            }
            path.push(module);
            for used in imports.get(module).into_iter().flatten() {
                if capabilities.contains(&used.as_str())
                    && let Some(cycle) = visit(used, imports, capabilities, path, done)
                {
                    return Some(cycle);
                }
            }
            path.pop();
            done.insert(module);
            None
        }
        let mut done = BTreeSet::new();
        for capability in capabilities {
            if let Some(cycle) = visit(capability, &imports, capabilities, &mut Vec::new(), &mut done) {
                panic!("capabilities import each other in a loop: {cycle}");
            }
        }
    }

    #[test]
    fn the_scan_sees_imports() {
        let imports = imports();
        assert!(imports["http"].contains("db"), "http uses db: the scanner must see it");
        assert!(imports["app"].contains("accounts"));
    }
}
