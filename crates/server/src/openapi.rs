//! The OpenAPI 3.1 document of the HTTP API, served at `GET /openapi.json`.
//!
//! It is collected from the router itself: every route is registered through
//! [`utoipa_axum::router::OpenApiRouter`] with the `#[utoipa::path]` description of its handler,
//! so a route cannot be served without being documented, nor documented without being served.

use axum::Extension;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use leadscore_store::keys::Scope;
use utoipa::ToSchema;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response as ApiResponse, ResponseBuilder};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, Content, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Schema,
};

use crate::error::ErrorCode;
use crate::messages::ID_LIMIT;

/// The name of the security scheme every authenticated operation requires.
pub const API_KEY: &str = "api_key";

const DESCRIPTION: &str = "Lead scoring as a service: teams send contacts and activity as it \
happens (Segment's Tracking API or the native API); each accepted event is stored durably and the \
lead rescored before the answer, which carries the new scores.

Authentication: send an API key as `Authorization: Bearer KEY`. Keys have a scope (`ingest`, \
`read` or `admin`; an admin key can do everything); a key of the wrong scope gets 403. The Segment \
endpoints (`/v1/...`) also accept Segment's way, the write key as the basic-auth user name with an \
empty password, or the body's `writeKey`.

Errors are JSON `{\"code\", \"message\"}` with a 4xx status for client mistakes (the `code` is \
stable, the `message` says what to fix) and 500 for faults.";

/// The error answer of every endpoint.
#[derive(utoipa::ToSchema)]
#[schema(as = ApiError)]
#[allow(dead_code)] // Only describes `crate::error::ApiError`'s body.
pub struct ErrorBody {
    #[schema(schema_with = error_code)]
    code: String,
    /// What went wrong and how to fix it.
    message: String,
}

/// Every `code` an error answer may carry: [`ErrorCode`]'s wire names.
fn error_code() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("Stable, machine-readable: what went wrong (docs/api.md says when each code is answered)"))
        .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.name())))
        .build()
}

/// The document's fixed part: what the routes do not say (title, version, security scheme).
pub fn base() -> OpenApi {
    let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(
        "An API key: `Authorization: Bearer KEY`. The Segment endpoints (`/v1/...`) also accept \
         basic auth with the write key as the user name (and an empty password).",
    ));
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("leadscore")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(DESCRIPTION))
                .license(Some(LicenseBuilder::new().name("Apache-2.0").identifier(Some("Apache-2.0")).build())),
        )
        .components(Some(
            ComponentsBuilder::new().security_scheme(API_KEY, SecurityScheme::Http(bearer.build())).build(),
        ))
        .build()
}

/// The shared answer of every secured operation to a request without a valid key.
const UNAUTHORIZED: &str = "Unauthorized";

/// The name and description of the shared 403 answer of operations that need `scope`.
fn forbidden(scope: Scope) -> (&'static str, &'static str) {
    match scope {
        Scope::Ingest => ("NotAnIngestKey", "The key is neither an ingest nor an admin key"),
        Scope::Read => ("NotAReadKey", "The key is neither a read nor an admin key"),
        Scope::Admin => ("NotAnAdminKey", "The key is not an admin key"),
        Scope::Browser => (
            "NotASendingKey",
            "`forbidden`: a read key (the route takes ingest, browser and admin keys); \
             `origin_not_allowed`: a browser key sent from a page of an origin it is not bound to",
        ),
    }
}

/// An error answer (`{code, message}`) with its description.
fn refusal(description: &str) -> RefOr<ApiResponse> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/json", Content::new(Some(Ref::from_schema_name(ErrorBody::name()))))
            .build(),
    )
}

/// The scope an operation's security requirement names: `security(("api_key" = ["admin"]))`
/// says what its handler's `Authorized<AdminScope>` checks.
pub fn needed_scope(operation: &Operation) -> Option<Scope> {
    // A requirement's scopes are private to utoipa: read them from its serialized form.
    let requirements = serde_json::to_value(operation.security.as_ref()?).ok()?;
    requirements.as_array()?.iter().find_map(|r| r.get(API_KEY)?.as_array()?.first()?.as_str()?.parse().ok())
}

/// Declares the 401 and 403 answers once, in `components.responses`, and refers to them from
/// every operation that needs a key, the 403 according to the scope it needs.
pub fn with_refusals(mut api: OpenApi) -> OpenApi {
    let components = api.components.get_or_insert_with(Default::default);
    components
        .responses
        .insert(UNAUTHORIZED.to_string(), refusal("No key, an unknown one, or a malformed `Authorization` header"));
    for scope in [Scope::Ingest, Scope::Read, Scope::Admin, Scope::Browser] {
        let (name, description) = forbidden(scope);
        components.responses.insert(name.to_string(), refusal(description));
    }
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
            &mut item.query,
        ];
        for operation in operations.into_iter().flatten() {
            let Some(scope) = needed_scope(operation) else { continue };
            let answers = &mut operation.responses.responses;
            answers.insert("401".to_string(), RefOr::Ref(Ref::from_response_name(UNAUTHORIZED)));
            answers.insert("403".to_string(), RefOr::Ref(Ref::from_response_name(forbidden(scope).0)));
        }
    }
    api
}

/// A text with a character that is not white space: what `!text.trim().is_empty()` accepts. The
/// class lists Unicode's White_Space characters, which Rust's `trim` removes, one by one: `\s`
/// means other sets in other regular expression dialects (Python's holds `\x1c`-`\x1f` too).
pub const NOT_BLANK: &str =
    "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

/// An empty text or one of white space alone (the characters of [`NOT_BLANK`]'s class).
pub const BLANK: &str = "^[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$";

/// An id or an event type as every ingestion path checks it (`ingest::check_id`): 1 to 200
/// characters, not all white space.
pub fn id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(ID_LIMIT))
        .pattern(Some(NOT_BLANK))
        .build()
}

/// An id as [`id`] says, or `null` (absent).
pub fn optional_id() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .min_length(Some(1))
        .max_length(Some(ID_LIMIT))
        .pattern(Some(NOT_BLANK))
        .build()
}

/// A schema written in JSON Schema itself, for what utoipa's types cannot hold (`if`/`then`,
/// `not`, `contains`, a union of types with their own constraints): an object without a type
/// whose every keyword is an "extension", which utoipa writes out as it is.
pub fn json_schema(schema: serde_json::Value) -> RefOr<Schema> {
    let serde_json::Value::Object(keywords) = schema else { panic!("a JSON Schema is an object: {schema}") };
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::AnyValue)
            .extensions(Some(Extensions::from_iter(keywords)))
            .build(),
    ))
}

/// The reference to a component schema, for [`json_schema`]s that include one.
pub fn reference<T: utoipa::ToSchema>() -> serde_json::Value {
    serde_json::json!({ "$ref": format!("#/components/schemas/{}", T::name()) })
}

/// The serialized document, handed to [`document`] by an `Extension` layer.
#[derive(Clone)]
pub struct Document(pub Bytes);

impl Document {
    pub fn new(api: &OpenApi) -> Document {
        Document(Bytes::from(serde_json::to_vec(api).expect("an OpenAPI document serializes")))
    }
}

/// An OpenAPI 3.1 document: its parts as the specification defines them.
pub struct OpenApiDocument;

impl utoipa::PartialSchema for OpenApiDocument {
    fn schema() -> RefOr<Schema> {
        json_schema(serde_json::json!({
            "type": "object",
            "description": "An OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0)",
            "required": ["openapi", "info", "paths", "components"],
            "properties": {
                "openapi": { "type": "string", "pattern": "^3\\.1\\." },
                "info": { "type": "object", "required": ["title", "version"] },
                "paths": { "type": "object" },
                "components": { "type": "object" },
            },
        }))
    }
}

impl utoipa::ToSchema for OpenApiDocument {}

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "openapi",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = OpenApiDocument)),
)]
pub async fn document(Extension(document): Extension<Document>) -> Response {
    ([(CONTENT_TYPE, "application/json")], document.0).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The characters of a regular expression class body such as [`NOT_BLANK`]'s: single
    /// characters, `\\t`-style and `\\uXXXX` escapes, and ranges between them.
    fn class_members(body: &str) -> Vec<(char, char)> {
        let mut chars = body.chars();
        let mut single = || -> Option<char> {
            let c = chars.next()?;
            if c != '\\' {
                return Some(c);
            }
            Some(match chars.next()? {
                't' => '\t',
                'n' => '\n',
                'v' => '\u{b}',
                'f' => '\u{c}',
                'r' => '\r',
                'u' => {
                    let hex: String = (0..4).filter_map(|_| chars.next()).collect();
                    char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap()
                }
                other => panic!("unexpected escape \\{other}"),
            })
        };
        let mut members = Vec::new();
        let mut pending: Option<char> = None;
        let mut range = false;
        while let Some(c) = single() {
            match (pending, c) {
                (Some(_), '-') if !range => range = true,
                (Some(start), end) if range => {
                    members.push((start, end));
                    pending = None;
                    range = false;
                }
                (Some(previous), next) => {
                    members.push((previous, previous));
                    pending = Some(next);
                }
                (None, next) => pending = Some(next),
            }
        }
        members.extend(pending.map(|c| (c, c)));
        members
    }

    /// Every value of a `pattern` keyword in `value`.
    fn patterns<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match value {
                        serde_json::Value::String(pattern) if key == "pattern" => out.push(pattern),
                        _ => patterns(value, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| patterns(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_operation_that_needs_a_key_refers_to_the_shared_401_and_403_of_its_scope() {
        let document = serde_json::to_value(crate::document()).unwrap();
        let shared = &document["components"]["responses"];
        let reference = |name: &str| serde_json::json!({ "$ref": format!("#/components/responses/{name}") });
        let mut secured = 0;
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let answers = &operation["responses"];
                let Some(scope) = operation["security"][0][API_KEY][0].as_str() else {
                    assert!(
                        operation["security"].is_null(),
                        "{method} {path}: a security requirement without its scope"
                    );
                    assert!(answers.get("401").is_none() && answers.get("403").is_none(), "{method} {path}");
                    continue;
                };
                secured += 1;
                let (forbidden_name, _) = forbidden(scope.parse().unwrap());
                assert_eq!(answers["401"], reference(UNAUTHORIZED), "{method} {path}");
                assert_eq!(answers["403"], reference(forbidden_name), "{method} {path}");
            }
        }
        assert!(secured > 20, "{secured}");
        for name in [UNAUTHORIZED, "NotAnIngestKey", "NotAReadKey", "NotAnAdminKey"] {
            let schema = &shared[name]["content"]["application/json"]["schema"];
            assert_eq!(schema, &serde_json::json!({ "$ref": "#/components/schemas/ApiError" }), "{name}");
        }
    }

    #[test]
    fn the_error_answer_lists_every_code() {
        let document = serde_json::to_value(crate::document()).unwrap();
        let listed = &document["components"]["schemas"]["ApiError"]["properties"]["code"]["enum"];
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.name()).collect();
        assert_eq!(listed, &serde_json::json!(codes));
    }

    #[test]
    fn every_pattern_about_white_space_in_the_document_is_one_of_the_two_checked_here() {
        let document = serde_json::to_value(crate::document()).unwrap();
        let mut found = Vec::new();
        patterns(&document, &mut found);
        let about_white_space: Vec<&str> = found.into_iter().filter(|p| p.contains("\\u3000")).collect();
        assert!(about_white_space.len() > 5, "{about_white_space:?}");
        for pattern in about_white_space {
            assert!(pattern == NOT_BLANK || pattern == BLANK, "{pattern}");
        }
    }

    #[test]
    fn the_blank_patterns_list_exactly_the_characters_trim_removes() {
        let body = NOT_BLANK.strip_prefix("[^").and_then(|b| b.strip_suffix(']')).unwrap();
        assert_eq!(BLANK, format!("^[{body}]*$"));
        let members = class_members(body);
        for code in 0..=0x10ffff_u32 {
            let Some(c) = char::from_u32(code) else { continue };
            let listed = members.iter().any(|(start, end)| (*start..=*end).contains(&c));
            assert_eq!(listed, c.is_whitespace(), "U+{code:04X}");
        }
    }

    /// docs/openapi.json is the document the service serves, so that people and tools can read the
    /// API without running it, and so that every change to the API shows in review. When it is
    /// out of date this test writes the current document there and fails: review and commit it.
    #[test]
    fn the_committed_openapi_document_is_the_served_one() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        // Through a `Value`, whose objects keep their keys sorted: some of utoipa's maps (schema
        // extensions) are hash maps, whose order changes from run to run.
        let document = serde_json::to_value(crate::document()).unwrap();
        let current = serde_json::to_string_pretty(&document).unwrap() + "\n";
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != current {
            std::fs::write(&path, &current).unwrap();
            panic!(
                "docs/openapi.json was not the document the service serves; it has been rewritten: review and commit it"
            );
        }
    }
}
