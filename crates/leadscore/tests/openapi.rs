//! `GET /openapi.json`: the OpenAPI document of the running server lists exactly the operations
//! it serves.

mod common;

use common::*;
use serde_json::{Value, json};

/// Every operation the document describes, sorted. Written out so that a route added or removed
/// shows up in review: the document is collected from the router, so a new route lands here.
const DOCUMENTED: &[&str] = &[
    "DELETE /api/keys/{id}",
    "DELETE /api/webhooks/{id}",
    "GET /api/keys",
    "GET /api/leads",
    "GET /api/leads/{id}",
    "GET /api/leads/{id}/history",
    "GET /api/leads/{id}/stages",
    "GET /api/models",
    "GET /api/models/{version}/preview",
    "GET /api/predictive-models",
    "GET /api/webhooks",
    "GET /api/webhooks/{id}/deliveries",
    "GET /healthz",
    "GET /metrics",
    "GET /openapi.json",
    "GET /readyz",
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
    "POST /v1/alias",
    "POST /v1/batch",
    "POST /v1/group",
    "POST /v1/identify",
    "POST /v1/page",
    "POST /v1/screen",
    "POST /v1/track",
    "PUT /api/leads/{id}",
    "PUT /api/predictive-models/{name}",
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
        let name = target.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{target}"));
        assert!(document["components"]["schemas"].get(name).is_some(), "{target} is not in the document");
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
