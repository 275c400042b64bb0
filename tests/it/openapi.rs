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
