//! The shared HTTP layer itself: every answer the framework could give on its own (unknown
//! path, wrong method, oversized or malformed body) is the contract's JSON error with
//! `x-known-error`, in the contract's order of checks (413 → routing → 401 → 400).

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use cc_aws::lambda::Function;
use cc_local::embedded::EmbeddedStore;
use contact_channels::Service;
use contact_channels::config::{Config, Profile};
use contact_channels::http::{Endpoint, MAX_BODY_BYTES, Route, router};
use serde_json::Value;

struct Api {
    router: axum::Router,
    _dir: tempfile::TempDir,
}

fn api(serves: &[Route]) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_lookup(Profile::Local, |_| None).unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    Api {
        router: router(Arc::new(Service::new(config, store)), &Endpoint::of(serves)),
        _dir: dir,
    }
}

impl Api {
    async fn send(
        &self,
        method: &str,
        path: &str,
        server: bool,
        body: impl Into<Body>,
    ) -> (u16, http::HeaderMap, Value) {
        let mut request = http::Request::builder().method(method).uri(path);
        if server {
            request = request.header("x-server-key", cc_tests::SERVER_KEY);
        }
        cc_tests::router::call(&self.router, request.body(body.into()).unwrap()).await
    }
}

#[track_caller]
fn assert_error(got: &(u16, http::HeaderMap, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.2);
    assert_eq!(got.2["code"], code, "{}", got.2);
    assert!(got.2["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(got.1.get("x-known-error").unwrap(), code);
    assert_eq!(got.1.get("content-type").unwrap(), "application/json");
}

const BASE: &str = "/api/v1/contact-channels";
const CHANNEL: &str = "/api/v1/contact-channels/alice/00000000-0000-4000-8000-000000000001";

/// The route sets the answers below must hold for: the local server's (all) and each
/// function's. A function answers for the whole table, not only its own routes: with only
/// `/{user_id}/{contact_channel_id}` registered, `GET …/verify/check-code` would reach the read
/// handler (a 400) instead of being the static path's 405.
fn route_sets() -> Vec<Vec<Route>> {
    let mut sets = vec![Route::ALL.to_vec()];
    sets.extend(FUNCTIONS.iter().map(|f| f.routes()));
    sets
}

const FUNCTIONS: [Function; 6] = [
    Function::Create,
    Function::List,
    Function::Patch,
    Function::Delete,
    Function::SendVerification,
    Function::Attempt,
];

#[tokio::test]
async fn unknown_paths_are_a_json_404() {
    for routes in route_sets() {
        unknown_paths_are_a_json_404_for(&routes).await;
    }
}

async fn unknown_paths_are_a_json_404_for(routes: &[Route]) {
    let api = api(routes);
    for path in [
        "/",
        "/api/v1/contact-channels/",
        "/api/v1/contact-channelsx",
        "/api/v1/contact-channels/a//b",
        "/api/v1/contact-channels/a/b/c",
        "/api/v1/contact-channels/a/b/send-verification-code/x",
    ] {
        let got = api.send("GET", path, true, "").await;
        assert_eq!(got.0, 404, "GET {path} with {routes:?}");
        assert_error(&got, 404, "NOT_FOUND");
    }
}

#[tokio::test]
async fn other_methods_are_a_json_405_with_the_paths_allow_header() {
    for routes in route_sets() {
        other_methods_are_a_json_405_for(&routes).await;
    }
}

async fn other_methods_are_a_json_405_for(routes: &[Route]) {
    let api = api(routes);
    for (method, path, allow) in [
        ("PUT", CHANNEL, "GET, PATCH, DELETE"),
        ("HEAD", CHANNEL, "GET, PATCH, DELETE"),
        ("DELETE", BASE, "GET, POST"),
        ("GET", "/api/v1/contact-channels/verify", "POST"),
        ("GET", "/api/v1/contact-channels/verify/check-code", "POST"),
        ("GET", &format!("{CHANNEL}/attempt-verification"), "POST"),
    ] {
        let got = api.send(method, path, true, "").await;
        if method != "HEAD" {
            assert_error(&got, 405, "METHOD_NOT_ALLOWED");
        }
        assert_eq!(got.0, 405, "{method} {path} with {routes:?}");
        assert_eq!(got.1.get("allow").unwrap(), allow, "{method} {path}");
    }
}

#[tokio::test]
async fn a_function_answers_404_for_a_route_another_function_serves() {
    let list_only = api(&[Route::List, Route::Read]);
    let got = list_only.send("PATCH", CHANNEL, true, "{}").await;
    assert_error(&got, 404, "NOT_FOUND");
    // A method no function serves is still the path's 405, whichever function gets it.
    let got = list_only.send("PUT", CHANNEL, true, "").await;
    assert_error(&got, 405, "METHOD_NOT_ALLOWED");
    assert_eq!(got.1.get("allow").unwrap(), "GET, PATCH, DELETE");
    // And on paths it serves nothing on, whatever the route.
    let send_only = api(&Function::SendVerification.routes());
    for (method, path) in [
        ("POST", BASE.to_owned()),
        ("GET", CHANNEL.to_owned()),
        ("POST", "/api/v1/contact-channels/verify".to_owned()),
        ("POST", format!("{CHANNEL}/attempt-verification")),
    ] {
        let got = send_only.send(method, &path, true, "{}").await;
        assert_eq!(got.0, 404, "{method} {path}");
        assert_error(&got, 404, "NOT_FOUND");
    }
}

#[tokio::test]
async fn an_oversized_body_is_413_before_routing_and_authentication() {
    let api = api(Route::ALL);
    let big = format!("{{\"value\":\"{}\"}}", "a".repeat(MAX_BODY_BYTES));
    for (method, path) in [("POST", BASE), ("POST", "/nowhere"), ("PUT", CHANNEL)] {
        let got = api.send(method, path, false, big.clone()).await;
        assert_error(&got, 413, "PAYLOAD_TOO_LARGE");
    }
    // Exactly the limit is still read (and then judged on its content).
    let at_limit = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_BODY_BYTES - 8));
    assert_eq!(at_limit.len(), MAX_BODY_BYTES);
    let got = api.send("PATCH", CHANNEL, true, at_limit).await;
    assert_error(&got, 400, "SCHEMA_ERROR");
}

#[tokio::test]
async fn credentials_are_checked_before_the_body() {
    let api = api(Route::ALL);
    assert_error(
        &api.send("POST", BASE, false, "{not json").await,
        401,
        "UNAUTHENTICATED",
    );
}

#[tokio::test]
async fn malformed_or_wrongly_shaped_bodies_are_a_json_400_naming_the_problem() {
    let api = api(Route::ALL);
    for (body, needle) in [
        ("{not json", "not valid JSON"),
        (
            "[\"alice\",\"email\",\"a@example.com\",true]",
            "JSON object",
        ),
        ("\"text\"", "JSON object"),
        (
            r#"{"user_id":"alice","type":"email","value":"a@example.com","used_for_auth":true,"used_for_auth":false}"#,
            "'used_for_auth'",
        ),
        (
            r#"{"user_id":"alice","type":"email","value":"a@example.com","used_for_auth":"yes"}"#,
            "'used_for_auth'",
        ),
    ] {
        let got = api.send("POST", BASE, true, body).await;
        assert_error(&got, 400, "SCHEMA_ERROR");
        assert!(
            got.2["error"].as_str().unwrap().contains(needle),
            "{body}: {}",
            got.2
        );
    }
    // A body that is not JSON at all, whatever content type it claims, changes nothing.
    let got = api.send("POST", BASE, true, "user_id=alice").await;
    assert_error(&got, 400, "SCHEMA_ERROR");
    let list = api
        .send("GET", &format!("{BASE}?user_id=alice"), true, "")
        .await;
    assert_eq!(list.2["items"], serde_json::json!([]));
}
