//! The OpenAPI document: the committed `openapi.json` is exactly what the code generates (so
//! the contract cannot drift from the types), the router serves it without credentials, and it
//! says what the route table, the request types and the credentials of each route are.
//! `make test-openapi` also validates it as OpenAPI 3.1 and fuzzes the server against it.

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use cc_aws::lambda::Function;
use cc_local::embedded::EmbeddedStore;
use contact_channels::Service;
use contact_channels::config::{Config, Profile};
use contact_channels::http::{OPENAPI_JSON, Route, openapi, router};
use serde_json::Value;

fn committed() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn document() -> Value {
    serde_json::from_str(&openapi::to_json()).unwrap()
}

#[test]
fn the_committed_document_is_the_one_the_code_generates() {
    let generated = openapi::to_json();
    let committed = committed();
    if generated != committed {
        let line = generated
            .lines()
            .zip(committed.lines())
            .position(|(g, c)| g != c)
            .unwrap_or_else(|| generated.lines().count().min(committed.lines().count()));
        panic!(
            "openapi.json is out of date: run `make openapi` and commit it \
             (first difference at line {}: generated {:?}, committed {:?})",
            line + 1,
            generated.lines().nth(line),
            committed.lines().nth(line)
        );
    }
    // The server embeds the same file.
    assert_eq!(OPENAPI_JSON, committed);
}

#[tokio::test]
async fn the_list_function_serves_the_document_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_lookup(Profile::Local, |_| None).unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let service = Arc::new(Service::new(config, store));
    let request = || {
        http::Request::builder()
            .method("GET")
            .uri("/api/v1/openapi.json")
            .body(Body::empty())
            .unwrap()
    };
    let list = router(service.clone(), Function::List.endpoints());
    let (status, headers, body) = cc_tests::router::call(&list, request()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers.get("content-type").unwrap(), "application/json");
    assert_eq!(body, serde_json::from_str::<Value>(&committed()).unwrap());
    // API Gateway sends it to the list function only; another function says the route is not
    // its own, as for any route another function serves.
    let create = router(service, Function::Create.endpoints());
    let (status, _, body) = cc_tests::router::call(&create, request()).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
}

#[test]
fn every_route_is_documented_with_its_method_and_credentials() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut operations = 0;
    for &route in Route::ALL {
        let (path, method) = route.path_and_method();
        let op = &doc["paths"][&path][method.as_str().to_lowercase()];
        assert!(op.is_object(), "{method} {path} is missing");
        operations += 1;
        let schemes: Vec<String> = op["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path}: no security"))
            .iter()
            .flat_map(|r| r.as_object().unwrap().keys().cloned())
            .collect();
        let public = matches!(route, Route::VerifyLink | Route::CheckLink | Route::OpenApi);
        if public {
            assert!(schemes.is_empty(), "{method} {path}: {schemes:?}");
        } else {
            assert_eq!(schemes, ["bearerAuth", "serverKey"], "{method} {path}");
            assert!(op["responses"]["401"].is_object(), "{method} {path}");
        }
    }
    assert_eq!(
        operations, 10,
        "nine routes of the contract and the document itself"
    );
    let key = &doc["components"]["securitySchemes"]["serverKey"];
    assert_eq!(
        (&key["type"], &key["in"]),
        (&"apiKey".into(), &"header".into())
    );
    assert_eq!(key["name"], "x-server-key");
    let bearer = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(
        (&bearer["scheme"], &bearer["bearerFormat"]),
        (&"bearer".into(), &"JWT".into())
    );
}

#[test]
fn every_error_response_names_its_codes_in_the_body_and_the_header() {
    let doc = document();
    let mut seen = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let status: u16 = status.parse().unwrap();
                if status < 400 {
                    continue;
                }
                let schema = &response["content"]["application/json"]["schema"];
                assert_eq!(
                    schema["allOf"][0]["$ref"], "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
                let codes = &schema["allOf"][1]["properties"]["code"]["enum"];
                let header = &response["headers"]["x-known-error"];
                assert_eq!(&header["schema"]["enum"], codes, "{method} {path} {status}");
                assert_eq!(header["required"], true);
                for code in codes.as_array().unwrap() {
                    seen.insert(code.as_str().unwrap().to_owned());
                    // Each code's line says what to do about it.
                    let description = response["description"].as_str().unwrap();
                    assert!(description.contains(&format!("`{}`:", code.as_str().unwrap())));
                }
                if status == 429 {
                    assert_eq!(response["headers"]["retry-after"]["required"], true);
                }
            }
        }
    }
    let all = [
        "PAYLOAD_TOO_LARGE",
        "NOT_FOUND",
        "UNAUTHENTICATED",
        "INVALID_ACCESS_TOKEN",
        "INVALID_SERVER_KEY",
        "SCHEMA_ERROR",
        "CANNOT_GET_OWN_USER_WITHOUT_USER",
        "FORBIDDEN",
        "CONTACT_CHANNEL_NOT_FOUND",
        "CONTACT_CHANNEL_ALREADY_EXISTS",
        "CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE",
        "TOO_MANY_CONTACT_CHANNELS",
        "EMAIL_ALREADY_VERIFIED",
        "REDIRECT_URL_NOT_WHITELISTED",
        "RATE_LIMITED",
        "EMAIL_DELIVERY_FAILED",
        "VERIFICATION_CODE_NOT_FOUND",
        "VERIFICATION_CODE_EXPIRED",
        "VERIFICATION_CODE_ALREADY_USED",
        "VERIFICATION_CODE_MAX_ATTEMPTS_REACHED",
        "VERIFICATION_CODE_INCORRECT",
        "INTERNAL_ERROR",
    ];
    let all: std::collections::BTreeSet<String> = all.iter().map(|s| s.to_string()).collect();
    assert_eq!(seen, all);
}

#[test]
fn request_bodies_are_closed_and_carry_the_contracts_limits() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    for name in [
        "CreateRequest",
        "UpdateRequest",
        "SendRequest",
        "CodeRequest",
        "TokenRequest",
    ] {
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
    }
    let mut required: Vec<&str> = schemas["CreateRequest"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["type", "used_for_auth", "user_id", "value"]);
    assert_eq!(schemas["EmailAddress"]["maxLength"], 254);
    assert_eq!(schemas["EmailAddress"]["format"], "email");
    assert_eq!(
        schemas["CodeRequest"]["properties"]["code"]["pattern"],
        "^[0-9]{6}$"
    );
    assert_eq!(
        schemas["UserId"]["pattern"],
        contact_channels::domain::USER_REF_PATTERN
    );
    assert_eq!(schemas["ChannelType"]["enum"], serde_json::json!(["email"]));
    assert_eq!(
        schemas["Strategy"]["enum"],
        serde_json::json!(["email_link", "email_code"])
    );
}

#[test]
fn no_function_builds_the_generator() {
    // The document is generated by the tests and `make openapi` only; a function serves the
    // committed file, so neither it nor anything it links may turn the `openapi` feature on.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut manifests = vec![
        root.join("aws/Cargo.toml"),
        root.join("aws/ses/Cargo.toml"),
        root.join("local/Cargo.toml"),
    ];
    for entry in std::fs::read_dir(root.join("functions")).unwrap() {
        manifests.push(entry.unwrap().path().join("Cargo.toml"));
    }
    for manifest in &manifests {
        let text = std::fs::read_to_string(manifest).unwrap();
        assert!(
            !text.contains("openapi") && !text.contains("utoipa"),
            "{} enables the OpenAPI generator",
            manifest.display()
        );
    }
    let shared = std::fs::read_to_string(root.join("shared/Cargo.toml")).unwrap();
    assert!(
        !shared
            .lines()
            .any(|l| l.starts_with("default") && l.contains("openapi")),
        "the openapi feature must not be a default of the shared crate"
    );
}

/// Each function binary links only the handlers it serves (`Function::binary`): the ~100 KB
/// document is inside `cc-list`, which serves it, and inside no other function.
#[test]
fn the_document_is_compiled_into_the_list_function_only() {
    let marker = b"\"openapi\": \"3.1";
    assert!(
        OPENAPI_JSON
            .as_bytes()
            .windows(marker.len())
            .any(|w| w == marker)
    );
    for name in cc_tests::FUNCTION_BINARIES {
        let binary = std::fs::read(cc_tests::bin(name)).unwrap();
        let linked = binary.windows(marker.len()).any(|w| w == marker);
        assert_eq!(
            linked,
            name == "cc-list",
            "{name}: document linked = {linked}"
        );
    }
}
