//! The built-in catalog, embedded in the binary from `catalog/`: it seeds
//! the database and answers the catalog endpoints when the database is down.
//! A unit test parses it whole, so a broken template fails the build's tests
//! and never ships.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use include_dir::{Dir, include_dir};
use serde::Deserialize;

use super::model::{Category, Complexity, OptionalVar, Technology, Template, TemplateSummary};

static CATALOG_DIR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/catalog");

/// `catalog/templates/<slug>/template.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    slug: String,
    name: String,
    description: String,
    category: String,
    tech_stack: Vec<String>,
    tags: Vec<String>,
    required_vars: Vec<String>,
    optional_vars: Vec<OptionalVar>,
    estimated_setup_time: i32,
    complexity: Complexity,
    author: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryFile {
    slug: String,
    name: String,
    description: String,
    sort_order: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TechnologyFile {
    slug: String,
    name: String,
    kind: String,
}

#[derive(Debug)]
pub struct BuiltinCatalog {
    pub categories: Vec<Category>,
    pub technologies: Vec<Technology>,
    /// Sorted by slug.
    pub templates: Vec<Template>,
}

fn json<T: serde::de::DeserializeOwned>(path: &str) -> Result<T, String> {
    let file = CATALOG_DIR.get_file(path).ok_or_else(|| format!("catalog/{path} is missing"))?;
    serde_json::from_slice(file.contents()).map_err(|e| format!("catalog/{path}: {e}"))
}

fn collect_files(
    dir: &'static Dir<'static>,
    root: &std::path::Path,
    out: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    for entry in dir.entries() {
        match entry {
            include_dir::DirEntry::Dir(d) => collect_files(d, root, out)?,
            include_dir::DirEntry::File(f) => {
                let rel = f.path().strip_prefix(root).map_err(|e| e.to_string())?;
                let text = f.contents_utf8().ok_or_else(|| format!("{} is not UTF-8 text", f.path().display()))?;
                out.insert(rel.to_string_lossy().replace('\\', "/"), text.to_string());
            }
        }
    }
    Ok(())
}

/// Every `{{NAME}}` placeholder in `text`.
fn placeholders(text: &str, out: &mut BTreeSet<String>) {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = &after[..end];
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
            out.insert(name.to_string());
        }
        rest = &after[end + 2..];
    }
}

fn load() -> Result<BuiltinCatalog, String> {
    let categories: Vec<CategoryFile> = json("categories.json")?;
    let technologies: Vec<TechnologyFile> = json("technologies.json")?;
    let category_slugs: BTreeSet<&str> = categories.iter().map(|c| c.slug.as_str()).collect();
    let tech_slugs: BTreeSet<&str> = technologies.iter().map(|t| t.slug.as_str()).collect();
    let templates_dir = CATALOG_DIR.get_dir("templates").ok_or("catalog/templates is missing")?;

    let mut templates = Vec::new();
    for dir in templates_dir.dirs() {
        let dir_name = dir.path().file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let meta: TemplateFile = json(&format!("templates/{dir_name}/template.json"))?;
        if meta.slug != dir_name {
            return Err(format!("catalog/templates/{dir_name}: slug {:?} differs from the directory name", meta.slug));
        }
        if !category_slugs.contains(meta.category.as_str()) {
            return Err(format!("template {}: unknown category {:?}", meta.slug, meta.category));
        }
        if let Some(t) = meta.tech_stack.iter().find(|t| !tech_slugs.contains(t.as_str())) {
            return Err(format!("template {}: technology {t:?} is not in technologies.json", meta.slug));
        }
        let files_dir =
            dir.get_dir(dir.path().join("files")).ok_or_else(|| format!("template {}: no files/", meta.slug))?;
        let mut files = BTreeMap::new();
        collect_files(files_dir, files_dir.path(), &mut files)?;
        let mut used = BTreeSet::new();
        for (path, content) in &files {
            placeholders(path, &mut used);
            placeholders(content, &mut used);
        }
        let declared: BTreeSet<String> =
            meta.required_vars.iter().cloned().chain(meta.optional_vars.iter().map(|v| v.name.clone())).collect();
        if used != declared {
            return Err(format!(
                "template {}: placeholders used {:?} differ from the variables declared {:?}",
                meta.slug, used, declared
            ));
        }
        let summary = TemplateSummary {
            slug: meta.slug,
            name: meta.name,
            description: meta.description,
            category: meta.category,
            tech_stack: meta.tech_stack,
            tags: meta.tags,
            required_vars: meta.required_vars,
            optional_vars: meta.optional_vars,
            estimated_setup_time: meta.estimated_setup_time,
            complexity: meta.complexity,
            is_public: true,
            is_builtin: true,
            author: Some(meta.author),
            usage_count: 0,
            file_count: i32::try_from(files.len()).unwrap_or(i32::MAX),
        };
        templates.push(Template { summary, files });
    }
    templates.sort_by(|a, b| a.summary.slug.cmp(&b.summary.slug));

    let count_in =
        |pred: &dyn Fn(&TemplateSummary) -> bool| templates.iter().filter(|t| pred(&t.summary)).count() as i64;
    let categories = categories
        .into_iter()
        .map(|c| Category {
            template_count: count_in(&|t| t.category == c.slug),
            slug: c.slug,
            name: c.name,
            description: c.description,
            sort_order: c.sort_order,
        })
        .collect();
    let technologies = technologies
        .into_iter()
        .map(|t| Technology {
            template_count: count_in(&|s| s.tech_stack.contains(&t.slug)),
            slug: t.slug,
            name: t.name,
            kind: t.kind,
        })
        .collect();
    Ok(BuiltinCatalog { categories, technologies, templates })
}

/// The embedded catalog, parsed once.
pub fn catalog() -> &'static BuiltinCatalog {
    static CATALOG: OnceLock<BuiltinCatalog> = OnceLock::new();
    CATALOG.get_or_init(|| match load() {
        Ok(c) => c,
        // The unit test below makes this unreachable in a tested build.
        Err(e) => panic!("the built-in catalog is invalid: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_is_valid_and_complete() {
        let catalog = load().unwrap_or_else(|e| panic!("{e}"));
        assert!(catalog.templates.len() >= 12, "at least 12 templates ship");
        let categories: BTreeSet<&str> = catalog.templates.iter().map(|t| t.summary.category.as_str()).collect();
        assert!(categories.len() >= 5, "templates span several categories: {categories:?}");
        for t in &catalog.templates {
            assert!(!t.files.is_empty(), "{} has files", t.summary.slug);
            assert!(t.summary.estimated_setup_time > 0, "{} has a setup time", t.summary.slug);
        }
    }

    #[test]
    fn placeholders_are_found() {
        let mut found = BTreeSet::new();
        placeholders("name = \"{{PROJECT_NAME}}\" {{ not_one }} {{PORT}}", &mut found);
        assert_eq!(found.into_iter().collect::<Vec<_>>(), ["PORT", "PROJECT_NAME"]);
    }
}
