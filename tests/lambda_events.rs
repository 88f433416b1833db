//! Handler tests: the API Gateway HTTP API (v2) events in `events/` (the shape `sam local
//! generate-event apigateway http-api-proxy` produces), parsed by lambda_http exactly as on
//! Lambda, handed to each function's handler; status, headers and JSON body are checked.

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cc_aws::lambda::Function;
use cc_local::outbox::Outbox;
use cc_tests::{link_token, six_digits};
use contact_channels::Service;
use contact_channels::config::{Config, Profile};
use contact_channels::http::router;
use serde_json::{Value, json};

const PLACEHOLDER: &str = "00000000-0000-4000-8000-000000000001";

struct Functions {
    _dir: tempfile::TempDir,
    outbox: Outbox,
    config: Config,
    store: Arc<dyn contact_channels::store::ChannelStore>,
}

fn setup() -> Functions {
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("VERIFICATION_SECRET", "0123456789abcdef0123456789abcdef"),
        ("MAIL_FROM", "no-reply@example.com"),
        ("SEND_COOLDOWN_SECONDS", "0"),
        // The handlers are under test here, with the embedded adapters; the binaries run
        // against DynamoDB and SES (moto) in the Runtime API tests.
        ("TABLE_NAME", "unused-the-store-is-embedded"),
        ("ALLOWED_CALLBACK_URLS", "https://app.example.com"),
    ];
    let digest = contact_channels::config::sha256_hex(cc_tests::SERVER_KEY.as_bytes());
    let config = Config::from_lookup(Profile::Lambda { sends_mail: true }, |name| {
        if name == "SERVER_KEY_SHA256" {
            return Some(digest.clone());
        }
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let store = Arc::new(cc_local::embedded::EmbeddedStore::open(dir.path()).unwrap());
    let outbox = Outbox::open(dir.path(), false).unwrap();
    Functions {
        _dir: dir,
        outbox,
        config,
        store,
    }
}

fn event(name: &str) -> String {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Value,
}

impl Functions {
    async fn invoke(&self, function: Function, event_json: &str) -> Answer {
        let service = Service::new(self.config.clone(), self.store.clone())
            .with_mailer(Arc::new(self.outbox.clone()));
        let router = router(Arc::new(service), function.endpoints());
        let request =
            lambda_http::request::from_str(event_json).expect("a valid API Gateway v2 event");
        let (status, headers, body) = cc_tests::router::call(&router, request).await;
        assert_eq!(headers.get("content-type").unwrap(), "application/json");
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn last_mail_text(&self) -> String {
        self.outbox.list().await.unwrap()[0].text.clone()
    }
}

fn with_body(event_json: &str, body: &Value) -> String {
    let mut e: Value = serde_json::from_str(event_json).unwrap();
    e["body"] = json!(body.to_string());
    e["isBase64Encoded"] = json!(false);
    e.to_string()
}

#[tokio::test]
async fn every_route_answers_its_event_through_its_function() {
    let f = setup();
    let created = f.invoke(Function::Create, &event("create.json")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["value"], "alice@example.com");
    assert_eq!(created.body["is_primary"], true);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let ev = |name: &str| event(name).replace(PLACEHOLDER, &id);

    let listed = f.invoke(Function::List, &ev("list.json")).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["is_paginated"], false);

    let read = f.invoke(Function::List, &ev("read.json")).await;
    assert_eq!(
        (read.status, read.body["id"].as_str()),
        (200, Some(id.as_str()))
    );

    let patched = f
        .invoke(
            Function::Patch,
            &with_body(&ev("patch.json"), &json!({ "is_primary": false })),
        )
        .await;
    assert_eq!(
        (patched.status, &patched.body["is_primary"]),
        (200, &json!(false))
    );

    let sent = f
        .invoke(Function::SendVerification, &ev("send-verification.json"))
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(sent.body["strategy"], "email_code");
    let code = six_digits(&f.last_mail_text().await).unwrap();

    let attempt = with_body(&ev("attempt-verification.json"), &json!({ "code": code }));
    let verified = f.invoke(Function::Attempt, &attempt).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.body["verification"]["status"], "verified");

    let deleted = f.invoke(Function::Delete, &ev("delete.json")).await;
    assert_eq!(
        (deleted.status, &deleted.body),
        (200, &json!({ "success": true }))
    );
}

#[tokio::test]
async fn link_verification_runs_through_the_attempt_function() {
    let f = setup();
    let created = f.invoke(Function::Create, &event("create.json")).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let send = with_body(
        &event("send-verification.json").replace(PLACEHOLDER, &id),
        &json!({ "strategy": "email_link", "callback_url": "https://app.example.com/verify?lang=en" }),
    );
    assert_eq!(
        f.invoke(Function::SendVerification, &send).await.status,
        200
    );
    let token = link_token(&f.last_mail_text().await).unwrap();

    let check = event("check-code.json").replace("REPLACE_WITH_THE_TOKEN_FROM_THE_LINK", &token);
    let checked = f.invoke(Function::Attempt, &check).await;
    assert_eq!(
        (checked.status, &checked.body),
        (200, &json!({ "is_code_valid": true }))
    );
    let verify = event("verify.json").replace("REPLACE_WITH_THE_TOKEN_FROM_THE_LINK", &token);
    let verified = f.invoke(Function::Attempt, &verify).await;
    assert_eq!(
        (verified.status, &verified.body),
        (200, &json!({ "success": true }))
    );
    let again = f.invoke(Function::Attempt, &verify).await;
    assert_eq!(again.status, 409);
    assert_eq!(
        again.headers.get("x-known-error").unwrap(),
        "VERIFICATION_CODE_ALREADY_USED"
    );
}

#[tokio::test]
async fn unknown_token_in_the_sample_event_is_404() {
    let f = setup();
    let answer = f.invoke(Function::Attempt, &event("verify.json")).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["code"], "VERIFICATION_CODE_NOT_FOUND");
}

#[tokio::test]
async fn a_function_answers_404_for_routes_it_does_not_serve() {
    let f = setup();
    let answer = f.invoke(Function::Create, &event("list.json")).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.headers.get("x-known-error").unwrap(), "NOT_FOUND");
}

#[tokio::test]
async fn an_event_without_credentials_is_401_with_the_known_error_header() {
    let f = setup();
    let mut e: Value = serde_json::from_str(&event("list.json")).unwrap();
    e["headers"].as_object_mut().unwrap().remove("x-server-key");
    let answer = f.invoke(Function::List, &e.to_string()).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.headers.get("x-known-error").unwrap(),
        "UNAUTHENTICATED"
    );
    assert_eq!(answer.body["code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn malformed_json_in_an_event_body_is_a_schema_error() {
    let f = setup();
    let mut e: Value = serde_json::from_str(&event("create.json")).unwrap();
    e["body"] = json!("{\"user_id\": ");
    e["isBase64Encoded"] = json!(false);
    let answer = f.invoke(Function::Create, &e.to_string()).await;
    assert_eq!(
        (answer.status, answer.body["code"].as_str()),
        (400, Some("SCHEMA_ERROR"))
    );
}

#[tokio::test]
async fn the_list_function_answers_the_document_event_without_credentials() {
    let f = setup();
    let answer = f.invoke(Function::List, &event("openapi.json")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let committed: Value = serde_json::from_str(contact_channels::http::OPENAPI_JSON).unwrap();
    assert_eq!(answer.body, committed);
    assert_eq!(answer.body["openapi"], "3.1.0");
}
