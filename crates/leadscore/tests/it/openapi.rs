//! `GET /openapi.json`: the OpenAPI document of the running server lists exactly the operations
//! it serves, says what every answer holds, and the answers hold what it says.
//!
//! `.ci/schemathesis.sh` checks the service against the document much further (every check of
//! Schemathesis, with keys of each scope); these tests keep the basics in `cargo test`.

use crate::common::*;
use serde_json::{Value, json};

/// Every operation the document describes, sorted. Written out so that a route added or removed
/// shows up in review: the document is collected from the router, so a new route lands here.
const DOCUMENTED: &[&str] = &[
    "DELETE /api/keys/{id}",
    "DELETE /api/leads/{id}",
    "DELETE /api/leads/{id}/overrides/{score}",
    "DELETE /api/webhooks/{id}",
    "GET /api/erasures",
    "GET /api/keys",
    "GET /api/leads",
    "GET /api/leads/{id}",
    "GET /api/leads/{id}/changes",
    "GET /api/leads/{id}/export",
    "GET /api/leads/{id}/history",
    "GET /api/leads/{id}/stages",
    "GET /api/models",
    "GET /api/models/{version}",
    "GET /api/models/{version}/preview",
    "GET /api/predictive-models",
    "GET /api/retention",
    "GET /api/webhooks",
    "GET /api/webhooks/{id}/deliveries",
    "GET /healthz",
    "GET /metrics",
    "GET /openapi.json",
    "GET /readyz",
    "GET /v1/projects/{writeKey}/settings",
    "POST /api/erasures/{id}/lift",
    "POST /api/events",
    "POST /api/import/events",
    "POST /api/import/leads",
    "POST /api/keys",
    "POST /api/leads/{id}/stage",
    "POST /api/models",
    "POST /api/models/rollback",
    "POST /api/models/{version}/activate",
    "POST /api/predictive-models/{name}/retrain",
    "POST /api/webhooks",
    "POST /api/webhooks/deliveries/{id}/redeliver",
    "POST /v1/a",
    "POST /v1/alias",
    "POST /v1/b",
    "POST /v1/batch",
    "POST /v1/g",
    "POST /v1/group",
    "POST /v1/i",
    "POST /v1/identify",
    "POST /v1/p",
    "POST /v1/page",
    "POST /v1/screen",
    "POST /v1/t",
    "POST /v1/track",
    "PUT /api/leads/{id}",
    "PUT /api/leads/{id}/overrides/{score}",
    "PUT /api/predictive-models/{name}",
    "PUT /api/retention",
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace", "query"];

/// `/api/leads/{id}/stage` -> `/api/leads/1/stage`.
fn with_dummy_params(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').expect("a path parameter is closed") + start;
        out.push_str(&rest[..start]);
        out.push('1');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Whether the router answered as for a route it does not have: its fallback's 404, or a 405
/// for a path it has under another method.
fn unrouted(response: &Response) -> bool {
    let fallback = json!({"code": "not_found", "message": "no such route"});
    response.status == 405
        || (response.status == 404 && serde_json::from_str::<Value>(&response.body).is_ok_and(|b| b == fallback))
}

/// Every `$ref` in `value`.
fn references<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(target) if key == "$ref" => out.push(target),
                    _ => references(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

#[test]
fn the_openapi_document_lists_exactly_the_served_operations() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let response = request(&server.address, "GET", "/openapi.json", &[], b"");
    assert_eq!(response.status, 200, "{}", response.body);
    let document = response.json();
    let version = document["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3."), "not an OpenAPI 3.x document: openapi = {:?}", document["openapi"]);
    assert_eq!(document["info"]["title"], "leadscore");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    let scheme = &document["components"]["securitySchemes"]["api_key"];
    assert_eq!((&scheme["type"], &scheme["scheme"]), (&json!("http"), &json!("bearer")), "{scheme}");

    let mut operations = Vec::new();
    let mut operation_ids = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            if METHODS.contains(&method.as_str()) {
                operations.push(format!("{} {path}", method.to_uppercase()));
                operation_ids.push(operation["operationId"].as_str().expect("an operationId").to_string());
            }
        }
    }
    operations.sort();
    assert_eq!(operations, DOCUMENTED, "the documented operations changed: update DOCUMENTED");
    operation_ids.sort();
    operation_ids.dedup();
    assert_eq!(operation_ids.len(), operations.len(), "operationIds are unique");
    let mut refs = Vec::new();
    references(&document, &mut refs);
    for target in refs {
        let (section, name) =
            target.strip_prefix("#/components/").and_then(|t| t.split_once('/')).unwrap_or_else(|| panic!("{target}"));
        assert!(["schemas", "responses"].contains(&section), "{target}");
        assert!(document["components"][section].get(name).is_some(), "{target} is not in the document");
    }

    // The probe tells an unrouted request apart from a routed one.
    assert!(unrouted(&request(&server.address, "GET", "/no/such/route", &[], b"")));
    assert!(unrouted(&request(&server.address, "DELETE", "/healthz", &[], b"")));
    // Every documented operation is served (without a key, most answer 401 or a 4xx for the body).
    for operation in DOCUMENTED {
        let (method, path) = operation.split_once(' ').unwrap();
        let response = request(&server.address, method, &with_dummy_params(path), &[], b"");
        assert!(!unrouted(&response), "{operation} is documented but not served: {response:?}");
    }
}

#[test]
fn every_operation_refuses_the_keys_its_documented_scope_does_not_allow() {
    let dir = tempfile::tempdir().unwrap();
    // The first key, so that `DELETE /api/keys/1` revokes none of the keys below.
    create_key(dir.path(), "w", "read");
    let (admin, ingest, read) = keys_of_every_scope(dir.path(), "w");
    let server = Server::start(dir.path(), &[]);
    let document = request(&server.address, "GET", "/openapi.json", &[], b"").json();
    // A JSON object every route reads far enough to check the key (the Segment routes read the
    // body first, for its `writeKey`); the admin key goes last, as it may change things.
    let body = br#"{"batch": []}"#;
    let send = |method: &str, path: &str, key: Option<&str>| {
        let authorization = key.map(|key| format!("Bearer {key}"));
        let mut headers = vec![("Content-Type", "application/json")];
        headers.extend(authorization.as_deref().map(|value| ("Authorization", value)));
        // A GET carries no body: a server that answers one without reading it (the OpenAPI
        // document, 240 KB) and closes may reset the connection before the answer arrives.
        let body: &[u8] = if method == "GET" { b"" } else { body };
        request(&server.address, method, path, &headers, body)
    };
    for (route, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let (method, path) = (method.to_uppercase(), with_dummy_params(route));
            let without_key = send(&method, &path, None);
            let Some(needed) = operation["security"][0]["api_key"][0].as_str() else {
                assert!(![401, 403].contains(&without_key.status), "{method} {route}: {}", without_key.body);
                continue;
            };
            assert_eq!(without_key.status, 401, "{method} {route}: {}", without_key.body);
            for (scope, key) in [("read", &read), ("ingest", &ingest), ("admin", &admin)] {
                // What a browser key may do, an ingest key may too.
                let allowed = scope == "admin" || scope == needed || (needed == "browser" && scope == "ingest");
                let answer = send(&method, &path, Some(key));
                assert_eq!(
                    answer.status == 403,
                    !allowed,
                    "{method} {route} ({needed}) with a {scope} key: {}",
                    answer.body
                );
            }
        }
    }
}

/// The schema a `$ref` names, or the schema itself.
fn resolved<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(target) => {
            let name = target.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{target}"));
            resolved(document, &document["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// Whether a schema says nothing of what the value holds: no type but `object` and nothing more,
/// or nothing at all.
fn says_nothing(document: &Value, schema: &Value) -> bool {
    let schema = resolved(document, schema);
    let Some(keywords) = schema.as_object() else { return true };
    let telling = ["properties", "additionalProperties", "allOf", "anyOf", "oneOf", "items", "enum", "const"];
    let typed = keywords.get("type").is_some_and(|t| t != "object");
    !typed && !telling.iter().any(|k| keywords.contains_key(*k))
}

#[test]
fn every_answer_and_request_body_says_what_it_holds_and_every_path_parameter_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let document = request(&server.address, "GET", "/openapi.json", &[], b"").json();
    let mut vague = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            for (status, answer) in operation["responses"].as_object().unwrap() {
                for (media_type, content) in answer["content"].as_object().into_iter().flatten() {
                    if status.starts_with('2') && says_nothing(&document, &content["schema"]) {
                        vague.push(format!("{name}: the {status} answer ({media_type})"));
                    }
                }
            }
            for (media_type, content) in operation["requestBody"]["content"].as_object().into_iter().flatten() {
                if says_nothing(&document, &content["schema"]) {
                    vague.push(format!("{name}: the request body ({media_type})"));
                }
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "path" {
                    assert_eq!(parameter["required"], true, "{name}: path parameter {}", parameter["name"]);
                }
            }
        }
    }
    assert!(vague.is_empty(), "schemas that say nothing of what they hold:\n{}", vague.join("\n"));
}

/// What in `value` does not hold to `schema`, by JSON Schema's rules for the keywords the
/// document's answers use (types, `required`, `properties`, `additionalProperties`, `items`,
/// `enum`, `const`, `allOf`, `anyOf`, `oneOf`); others (lengths, patterns, formats) are left to
/// Schemathesis.
fn violations(document: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let name = target.strip_prefix("#/components/schemas/").unwrap();
        violations(document, &document["components"]["schemas"][name], value, at, out);
    }
    let Some(keywords) = schema.as_object() else { return };
    if let Some(types) = keywords.get("type") {
        let types: Vec<&str> = match types {
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        let is = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        };
        if !types.iter().any(|t| is(t)) {
            out.push(format!("{at}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(allowed) = keywords.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        out.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(expected) = keywords.get("const")
        && expected != value
    {
        out.push(format!("{at}: {value} is not {expected}"));
    }
    for branch in keywords.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        violations(document, branch, value, at, out);
    }
    for keyword in ["anyOf", "oneOf"] {
        if let Some(branches) = keywords.get(keyword).and_then(Value::as_array) {
            let holding = branches
                .iter()
                .filter(|branch| {
                    let mut errors = Vec::new();
                    violations(document, branch, value, at, &mut errors);
                    errors.is_empty()
                })
                .count();
            if holding == 0 || (keyword == "oneOf" && holding > 1) {
                out.push(format!("{at}: {value} holds to {holding} of the {keyword} branches"));
            }
        }
    }
    if let Some(object) = value.as_object() {
        for name in keywords.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !object.contains_key(name.as_str().unwrap()) {
                out.push(format!("{at}: `{}` is missing", name.as_str().unwrap()));
            }
        }
        let properties = keywords.get("properties").and_then(Value::as_object);
        for (name, item) in object {
            match (properties.and_then(|p| p.get(name)), keywords.get("additionalProperties")) {
                (Some(property), _) => violations(document, property, item, &format!("{at}.{name}"), out),
                (None, Some(Value::Bool(false))) => out.push(format!("{at}: `{name}` is not documented")),
                (None, Some(other @ Value::Object(_))) => {
                    violations(document, other, item, &format!("{at}.{name}"), out)
                }
                (None, _) => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (keywords.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            violations(document, items, item, &format!("{at}[{i}]"), out);
        }
    }
}

/// Sends a request and checks its answer against the schema the document gives that status.
fn checked(
    server: &Server,
    document: &Value,
    (method, path, route): (&str, &str, &str),
    key: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Value {
    let mut headers = vec![("Authorization", format!("Bearer {key}"))];
    headers.extend(content_type.map(|t| ("Content-Type", t.to_string())));
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = request(&server.address, method, path, &headers, body);
    let answers = &document["paths"][route][method.to_lowercase()]["responses"];
    let mut answer = &answers[response.status.to_string()];
    // The refusals every secured operation shares are declared once, in `components.responses`.
    if let Some(target) = answer["$ref"].as_str() {
        answer = &document["components"]["responses"][target.trim_start_matches("#/components/responses/")];
    }
    assert!(answer.is_object(), "{method} {path}: status {} is not documented: {}", response.status, response.body);
    let schema = &answer["content"]["application/json"]["schema"];
    let value = response.json();
    let mut errors = Vec::new();
    violations(document, schema, &value, "answer", &mut errors);
    assert!(errors.is_empty(), "{method} {path} ({}): {}\n{}", response.status, errors.join("\n"), response.body);
    value
}

#[test]
fn the_answers_of_the_main_operations_hold_to_their_documented_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "w", "admin");
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/b2b-saas.toml");
    let model = model.to_str().unwrap();
    let server = Server::start(dir.path(), &["--model", model, "--workspace", "w", "--allow-private-webhooks"]);
    let document = request(&server.address, "GET", "/openapi.json", &[], b"").json();
    let json = Some("application/json");
    let call = |method: &str, path: &str, route: &str, content_type: Option<&str>, body: &[u8]| {
        checked(&server, &document, (method, path, route), &admin, content_type, body)
    };

    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/b2b-saas");
    let leads = std::fs::read(examples.join("leads.csv")).unwrap();
    let events = std::fs::read(examples.join("events.csv")).unwrap();
    call("POST", "/api/import/leads", "/api/import/leads", Some("text/csv"), &leads);
    call("POST", "/api/import/events", "/api/import/events", Some("text/csv"), &events);
    let track = json!({"userId": "b2b-01", "event": "Demo Requested", "messageId": "m-1"}).to_string();
    call("POST", "/v1/track", "/v1/track", json, track.as_bytes());
    let duplicate = call("POST", "/v1/track", "/v1/track", json, track.as_bytes());
    assert_eq!(duplicate["lead"], Value::Null);
    let batch = json!({"batch": [{"type": "identify", "userId": "u-9", "messageId": "m-2", "traits": {"industry": "Technology"}}, {"type": "track", "userId": "u-9", "messageId": "m-3"}, 7]});
    let batch = call("POST", "/v1/batch", "/v1/batch", json, batch.to_string().as_bytes());
    assert_eq!(batch["items"][1]["status"], "refused");
    let events = json!({"events": [{"lead": "u-9", "type": "page_view"}, {"lead": ""}]});
    call("POST", "/api/events", "/api/events", json, events.to_string().as_bytes());
    call("PUT", "/api/leads/u-10", "/api/leads/{id}", json, br#"{"email": "a@example.com"}"#);
    let lead = call("GET", "/api/leads/b2b-01", "/api/leads/{id}", None, b"");
    assert!(lead["scores"]["total"]["contributions"].as_array().is_some_and(|c| !c.is_empty()), "{lead}");
    call("GET", "/api/leads?limit=5", "/api/leads", None, b"");
    call("GET", "/api/leads/b2b-01/history", "/api/leads/{id}/history", None, b"");
    let move_to = json!({"stage": "SAL", "actor": "jane@example.com"}).to_string();
    call("POST", "/api/leads/b2b-01/stage", "/api/leads/{id}/stage", json, move_to.as_bytes());
    call("GET", "/api/leads/b2b-01/stages", "/api/leads/{id}/stages", None, b"");

    call("POST", "/api/models", "/api/models", Some("application/toml"), b"[scores.s]\nrules = []\n");
    call("POST", "/api/models", "/api/models", Some("text/plain"), b"[scores.s]\ntiers = 5\n");
    call("GET", "/api/models/2/preview", "/api/models/{version}/preview", None, b"");
    call("POST", "/api/models/2/activate", "/api/models/{version}/activate", None, b"");
    call("GET", "/api/models", "/api/models", None, b"");
    call("GET", "/api/predictive-models", "/api/predictive-models", None, b"");
    call("POST", "/api/predictive-models/conversion/retrain", "/api/predictive-models/{name}/retrain", json, b"null");

    let hook =
        json!({"url": "http://127.0.0.1:9/hook", "events": ["score_crossed"], "score": "total", "threshold": 1e9});
    let hook = call("POST", "/api/webhooks", "/api/webhooks", json, hook.to_string().as_bytes());
    assert_eq!(hook["warnings"].as_array().map(Vec::len), Some(1), "{hook}");
    call("GET", "/api/webhooks", "/api/webhooks", None, b"");
    let log = format!("/api/webhooks/{}/deliveries", hook["id"]);
    call("GET", &log, "/api/webhooks/{id}/deliveries", None, b"");
    let key = call("POST", "/api/keys", "/api/keys", json, br#"{"scope": "read"}"#);
    call("GET", "/api/keys", "/api/keys", None, b"");
    call("DELETE", &format!("/api/keys/{}", key["id"]), "/api/keys/{id}", None, b"");
}

#[test]
fn a_body_the_document_gives_as_an_object_is_refused_as_an_array_of_its_fields() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "w", "admin");
    let server = Server::start(dir.path(), &[]);
    let headers = [("Authorization", format!("Bearer {admin}")), ("Content-Type", "application/json".to_string())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (method, path, body, code) in [
        ("PUT", "/api/leads/u-1", "[null]", "invalid_field"),
        ("POST", "/api/keys", r#"["read"]"#, "invalid_field"),
        ("POST", "/api/events", "[[]]", "invalid_field"),
        ("POST", "/api/predictive-models/p/retrain", "[]", "invalid_field"),
        ("POST", "/v1/batch", "[[]]", "invalid_batch"),
    ] {
        let response = request(&server.address, method, path, &headers, body.as_bytes());
        assert_eq!((response.status, response.json()["code"].as_str()), (400, Some(code)), "{method} {path} {body}");
    }
    // Each event of a list is an object too: an array in its place is refused in its item.
    let events = json!({"events": [["u-1", "page_view"]]});
    let answer = server.post_json("/api/events", &admin, &events);
    assert_eq!(answer.json()["items"][0]["status"], "refused", "{}", answer.body);
}

/// JSON Schema's `integer` takes `7.0`, and the document offers `null` for the optional body:
/// both reach the retrain (which refuses for want of outcomes), neither is a 400.
#[test]
fn a_retrain_takes_a_null_body_and_a_seed_written_with_a_fraction() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "w", "admin");
    let server = Server::start(dir.path(), &[]);
    for body in [json!(null), json!({"seed": 7.0}), json!({"seed": 18446744073709551615_u64})] {
        let answer = server.post_json("/api/predictive-models/p/retrain", &admin, &body);
        assert_eq!((answer.status, answer.json()["code"].as_str()), (409, Some("not_enough_outcomes")), "{body}");
    }
    for seed in [json!(7.5), json!(-1), json!(1.8446744073709552e19)] {
        let answer = server.post_json("/api/predictive-models/p/retrain", &admin, &json!({ "seed": seed }));
        assert_eq!((answer.status, answer.json()["code"].as_str()), (400, Some("invalid_field")), "{seed}");
    }
}
