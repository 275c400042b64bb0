//! The OpenAPI document's base (title, description, the bearer security
//! scheme) and its finish: the composition root merges every capability's
//! routes into the base, then [`finish`] adds the problem answers every
//! operation shares by rule, so each operation documents every status it
//! can answer without repeating them by hand.

use serde_json::{Value, json};
use utoipa::OpenApi;

use super::pagination::MAX_LIMIT;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "devx",
        description = "The data service of an AI developer platform. Errors are application/problem+json; lists are keyset-paginated ({items, next_cursor}).",
    ),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A session token from /api/auth/login or an API key (devx_...)"))
                    .build(),
            ),
        );
    }
}

/// A problem answer operations share: its status, the name it has under
/// `components/responses`, what it means, and a header it carries.
struct SharedProblem {
    status: &'static str,
    name: &'static str,
    description: &'static str,
    header: Option<Header>,
}

struct Header {
    name: &'static str,
    /// Always sent with this status.
    required: bool,
    description: &'static str,
}

/// The problem answers every operation may share, by status.
const PROBLEMS: &[SharedProblem] = &[
    SharedProblem {
        status: "400",
        name: "BadRequest",
        description: "The request is malformed: a path or query parameter of the wrong type or an unknown query \
         parameter, a body that is not valid JSON, or a `limit` or `cursor` a list does not accept.",
        header: None,
    },
    SharedProblem {
        status: "401",
        name: "Unauthorized",
        description: "No bearer token, or one that is not valid, revoked or expired. Sign in again or use another key.",
        header: Some(Header {
            name: "WWW-Authenticate",
            required: true,
            description: "`Bearer`, with `error=\"invalid_token\"` when a token was sent.",
        }),
    },
    SharedProblem {
        status: "403",
        name: "Forbidden",
        description: "The credential lacks the scope this route needs (see the operation's security requirement), \
         or the route is for administrators.",
        header: None,
    },
    SharedProblem {
        status: "404",
        name: "NotFound",
        description: "No such resource, or not one the caller may see.",
        header: None,
    },
    SharedProblem {
        status: "409",
        name: "Conflict",
        description: "The change conflicts with the current state or with another row.",
        header: None,
    },
    SharedProblem {
        status: "413",
        name: "PayloadTooLarge",
        description: "The body is larger than the server accepts (`DEVX_BODY_LIMIT`).",
        header: None,
    },
    SharedProblem {
        status: "415",
        name: "UnsupportedMediaType",
        description: "The body must be JSON, sent with `Content-Type: application/json`.",
        header: None,
    },
    SharedProblem {
        status: "422",
        name: "Unprocessable",
        description: "The body is JSON but breaks a rule: a missing or unknown field, a value of the wrong type or out \
         of range. `errors` names each field.",
        header: None,
    },
    SharedProblem {
        status: "429",
        name: "TooManyRequests",
        description: "Too many attempts; wait the number of seconds `Retry-After` gives.",
        header: Some(Header {
            name: "Retry-After",
            required: true,
            description: "Seconds to wait before trying again.",
        }),
    },
    SharedProblem {
        status: "503",
        name: "Unavailable",
        description: "The database is unreachable, or the server is overloaded or lacks a setting the request needs; \
         retry later.",
        header: Some(Header {
            name: "Retry-After",
            required: false,
            description: "Seconds to wait, when the server knows.",
        }),
    },
    SharedProblem {
        status: "504",
        name: "Timeout",
        description: "The request took longer than `DEVX_REQUEST_TIMEOUT`; its work was cancelled.",
        header: None,
    },
];

/// Routes outside the database: they answer without it.
const WITHOUT_DATABASE: &[&str] = &["/livez"];

/// Makes the assembled document state every answer the server can give:
/// adds the shared problem responses to each operation by what it takes
/// (a token and its scope, path and query parameters, a JSON body), keeps
/// the answers an operation documents itself, and sets `servers` and the
/// top-level `tags` (`tags` gives each tag's description).
pub fn finish(doc: &utoipa::openapi::OpenApi, tags: &[(&str, &str)]) -> utoipa::openapi::OpenApi {
    let mut value = serde_json::to_value(doc).expect("an OpenAPI document serializes");
    complete(&mut value, tags);
    serde_json::from_value(value).expect("the completed OpenAPI document deserializes")
}

fn complete(doc: &mut Value, tags: &[(&str, &str)]) {
    let problem = json!({"$ref": "#/components/schemas/Problem"});
    let responses = doc["components"]
        .as_object_mut()
        .expect("the document has components")
        .entry("responses")
        .or_insert_with(|| json!({}));
    for shared in PROBLEMS {
        let mut response = json!({
            "description": shared.description,
            "content": {"application/problem+json": {"schema": problem}},
        });
        if let Some(header) = &shared.header {
            response["headers"] = json!({ header.name: {
                "description": header.description,
                "required": header.required,
                "schema": {"type": "string"},
            }});
        }
        responses[shared.name] = response;
    }

    let schemas = doc["components"]["schemas"].clone();
    let paths = doc["paths"].as_object_mut().expect("the document has paths");
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                continue;
            }
            state_parameter_rules(op);
            let refers = body_refers_to_rows(op, &schemas);
            let statuses = statuses_of(path, op, refers);
            let answers = op["responses"].as_object_mut().expect("every operation has responses");
            for shared in PROBLEMS {
                if statuses.contains(&shared.status) && !answers.contains_key(shared.status) {
                    let reference = json!({"$ref": format!("#/components/responses/{}", shared.name)});
                    answers.insert(shared.status.to_string(), reference);
                }
            }
            sort_statuses(answers);
        }
    }

    doc["servers"] = json!([{"url": "/", "description": "This server"}]);
    doc["tags"] = Value::Array(tags.iter().map(|(name, about)| json!({"name": name, "description": about})).collect());
}

/// The rules the HTTP kit applies to every parameter, stated on each: a
/// list's `limit` is 1 to [`MAX_LIMIT`], and no query parameter may be
/// empty (see [`Query`](super::Query)).
fn state_parameter_rules(op: &mut Value) {
    let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else { return };
    for param in params {
        let in_query = param["in"] == "query";
        let is_limit = in_query && param["name"] == "limit";
        let schema = &mut param["schema"];
        if is_limit {
            schema["minimum"] = json!(1);
            schema["maximum"] = json!(MAX_LIMIT);
        }
        let is_string = schema["type"] == "string" || schema["type"] == json!(["string", "null"]);
        if is_string && schema.get("minLength").is_none() && schema.get("enum").is_none() {
            schema["minLength"] = json!(1);
        }
    }
}

/// Whether the JSON body names other rows (a property holding a UUID, or a
/// template or category by its slug): such a body can be answered 404 naming the field.
fn body_refers_to_rows(op: &Value, schemas: &Value) -> bool {
    fn refers(schema: &Value, schemas: &Value, depth: usize) -> bool {
        if depth > 4 {
            return false;
        }
        if let Some(name) = schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
            return refers(&schemas[name], schemas, depth + 1);
        }
        if schema["format"] == "uuid" {
            return true;
        }
        let nested = ["allOf", "oneOf", "anyOf"]
            .iter()
            .filter_map(|k| schema[*k].as_array())
            .flatten()
            .any(|s| refers(s, schemas, depth + 1));
        let properties = schema["properties"].as_object().is_some_and(|props| {
            props.iter().any(|(name, prop)| {
                matches!(name.as_str(), "template" | "category") || refers(prop, schemas, depth + 1)
            })
        });
        nested || properties
    }
    refers(&op["requestBody"]["content"]["application/json"]["schema"], schemas, 0)
}

/// The shared statuses an operation can answer, from what it takes.
fn statuses_of(path: &str, op: &Value, body_refers_to_rows: bool) -> Vec<&'static str> {
    let mut statuses = Vec::new();
    let scope = op["security"]
        .as_array()
        .and_then(|requirements| requirements.iter().find_map(|r| r["bearer"].as_array()))
        .and_then(|scopes| scopes.first())
        .and_then(Value::as_str);
    if let Some(scope) = scope {
        statuses.push("401");
        if scope != "read" {
            statuses.push("403");
        }
    }
    let params = op["parameters"].as_array().map(Vec::as_slice).unwrap_or_default();
    if params.iter().any(|p| p["in"] == "path") {
        statuses.extend(["400", "404"]);
    }
    if params.iter().any(|p| p["in"] == "query") {
        // 400: the query string does not parse (unknown name, wrong type,
        // empty value); 422: a value parses but breaks a rule stated on it.
        statuses.extend(["400", "422"]);
    }
    if op.get("requestBody").is_some() {
        statuses.extend(["400", "413", "415", "422"]);
    }
    if body_refers_to_rows {
        statuses.push("404");
    }
    if !WITHOUT_DATABASE.contains(&path) {
        statuses.extend(["503", "504"]);
    }
    statuses
}

/// Statuses in numeric order, so the document reads top to bottom.
fn sort_statuses(answers: &mut serde_json::Map<String, Value>) {
    let mut entries: Vec<(String, Value)> = std::mem::take(answers).into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    answers.extend(entries);
}
