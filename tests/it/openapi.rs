//! The OpenAPI document is committed as `docs/openapi.json`, so that a change
//! to the API shows up in review as a diff of that file. This test builds the
//! document the server serves and compares it with the file; with
//! `DEVX_UPDATE_SNAPSHOTS=1` it rewrites the file instead.

use std::path::Path;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

/// The document as committed: pretty-printed, keys in the order the API
/// declares them (utoipa's `preserve_order`), a newline at the end.
fn rendered() -> String {
    let (_, doc) = devx::app::api();
    let mut text = serde_json::to_string_pretty(&doc).expect("the OpenAPI document serializes");
    text.push('\n');
    text
}

#[test]
fn docs_openapi_json_is_the_document_the_server_serves() {
    let current = rendered();
    let path = Path::new(SNAPSHOT);
    if std::env::var_os("DEVX_UPDATE_SNAPSHOTS").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(path, &current).unwrap_or_else(|e| panic!("writing {SNAPSHOT}: {e}"));
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if committed == current {
        return;
    }
    let first = committed
        .lines()
        .zip(current.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(current.lines().count()));
    panic!(
        "docs/openapi.json is not the document the API builds (first difference at line {}: \
         committed {:?}, built {:?}).\n\
         If the API change is intended, regenerate the file and commit it with the change:\n    \
         DEVX_UPDATE_SNAPSHOTS=1 cargo test --test it -- openapi::\n",
        first + 1,
        committed.lines().nth(first).unwrap_or("<end of file>"),
        current.lines().nth(first).unwrap_or("<end of file>"),
    );
}

/// Every `$ref` points at something the document defines, and every tag an
/// operation uses is declared (with a description) at the top level.
#[test]
fn every_reference_resolves_and_every_tag_is_declared() {
    let (_, doc) = devx::app::api();
    let doc = serde_json::to_value(&doc).unwrap();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 100, "the document uses shared components");
    let unresolved: Vec<&String> = refs.iter().filter(|r| doc.pointer(r.trim_start_matches('#')).is_none()).collect();
    assert!(unresolved.is_empty(), "references to nothing: {unresolved:?}");

    let declared: Vec<&str> = doc["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(doc["tags"].as_array().unwrap().iter().all(|t| t["description"].as_str().is_some_and(|d| !d.is_empty())));
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for tag in op["tags"].as_array().into_iter().flatten() {
                let tag = tag.as_str().unwrap();
                assert!(declared.contains(&tag), "{method} {path} uses the undeclared tag {tag:?}");
            }
        }
    }
    assert!(doc["servers"].as_array().is_some_and(|s| !s.is_empty()), "servers are set");
}

/// Each operation states the answers the HTTP kit can give it: 401 with a
/// token, 400 for parameters, 400/413/415/422 for a JSON body, 503/504.
#[test]
fn every_operation_documents_the_answers_its_inputs_can_cause() {
    let (_, doc) = devx::app::api();
    let doc = serde_json::to_value(&doc).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let has = |status: &str| op["responses"].get(status).is_some();
            let what = format!("{method} {path}");
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                assert!(has("401"), "{what}: 401");
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(has(status), "{what}: {status}");
                }
            }
            if op["parameters"].as_array().is_some_and(|p| !p.is_empty()) {
                assert!(has("400"), "{what}: 400");
            }
            if path != "/livez" {
                assert!(has("503") && has("504"), "{what}: 503 and 504");
            }
        }
    }
}

fn collect_refs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match v {
                    serde_json::Value::String(s) if key == "$ref" => out.push(s.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
