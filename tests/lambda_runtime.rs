//! The six Lambda binaries, run as processes against an in-test Lambda Runtime API, fed API
//! Gateway HTTP API v2 events (the `events/` samples and generated ones), on DynamoDB and
//! SES served by moto: the exact path a request takes on Lambda.

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use cc_tests::moto::moto;
use cc_tests::runtime::{Function, api_gateway_event};
use cc_tests::{SERVER_KEY, client_token, link_token, six_digits};
use serde_json::{Value, json};

const PLACEHOLDER: &str = "00000000-0000-4000-8000-000000000001";
const TOKEN_PLACEHOLDER: &str = "REPLACE_WITH_THE_TOKEN_FROM_THE_LINK";
const BASE: &str = "/api/v1/contact-channels";

struct Stack {
    create: Function,
    list: Function,
    patch: Function,
    delete: Function,
    send: Function,
    attempt: Function,
    sender: String,
}

async fn env(overrides: &[(&str, &str)]) -> (Vec<(String, String)>, String) {
    let moto = moto();
    let table = moto.new_table().await;
    let sender = moto.new_sender().await;
    let mut env = moto.env();
    let digest = contact_channels::config::sha256_hex(SERVER_KEY.as_bytes());
    for (k, v) in [
        ("TABLE_NAME", table.as_str()),
        ("MAIL_FROM", sender.as_str()),
        (
            "VERIFICATION_SECRET",
            "an-hmac-key-of-at-least-32-bytes-for-tests",
        ),
        ("SERVER_KEY_SHA256", digest.as_str()),
        ("JWT_HS256_SECRET", cc_tests::JWT_SECRET),
        ("ALLOWED_CALLBACK_URLS", "https://app.example.com"),
        ("SEND_COOLDOWN_SECONDS", "0"),
    ] {
        env.push((k.into(), v.into()));
    }
    for (k, v) in overrides {
        env.push(((*k).into(), (*v).into()));
    }
    (env, sender)
}

async fn stack(overrides: &[(&str, &str)]) -> Stack {
    let (env, sender) = env(overrides).await;
    Stack {
        create: Function::start("cc-create", &env).await,
        list: Function::start("cc-list", &env).await,
        patch: Function::start("cc-patch", &env).await,
        delete: Function::start("cc-delete", &env).await,
        send: Function::start("cc-send-verification", &env).await,
        attempt: Function::start("cc-attempt", &env).await,
        sender,
    }
}

impl Stack {
    fn all(&self) -> [&Function; 6] {
        [
            &self.create,
            &self.list,
            &self.patch,
            &self.delete,
            &self.send,
            &self.attempt,
        ]
    }

    async fn last_mail_text(&self) -> String {
        moto().sent_mail(&self.sender).await[0]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn sample(name: &str, id: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(
        &std::fs::read_to_string(path)
            .unwrap()
            .replace(PLACEHOLDER, id),
    )
    .unwrap()
}

fn with_body(mut event: Value, body: &Value) -> Value {
    event["body"] = body.to_string().into();
    event["isBase64Encoded"] = false.into();
    event
}

#[track_caller]
fn expect(got: &(u16, HashMap<String, String>, Value), status: u16, code: Option<&str>) {
    assert_eq!(got.0, status, "body: {}", got.2);
    assert_eq!(
        got.1.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(
        got.1.get("x-known-error").map(String::as_str),
        code,
        "body: {}",
        got.2
    );
    if let Some(code) = code {
        assert_eq!(got.2["code"], code);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_passes_through_its_binary_with_the_sample_events() {
    let s = stack(&[]).await;
    let created = s.create.call(sample("create.json", PLACEHOLDER)).await;
    expect(&created, 201, None);
    assert_eq!(created.2["value"], "alice@example.com");
    let id = created.2["id"].as_str().unwrap().to_owned();

    let listed = s.list.call(sample("list.json", &id)).await;
    expect(&listed, 200, None);
    assert_eq!(listed.2["items"][0]["id"], id.as_str());
    expect(&s.list.call(sample("read.json", &id)).await, 200, None);
    let patched = s
        .patch
        .call(with_body(
            sample("patch.json", &id),
            &json!({ "is_primary": false }),
        ))
        .await;
    expect(&patched, 200, None);
    assert_eq!(patched.2["is_primary"], false);

    // Verification by code.
    let sent = s.send.call(sample("send-verification.json", &id)).await;
    expect(&sent, 200, None);
    let code = six_digits(&s.last_mail_text().await).unwrap();
    let attempt = with_body(
        sample("attempt-verification.json", &id),
        &json!({ "code": code }),
    );
    let verified = s.attempt.call(attempt).await;
    expect(&verified, 200, None);
    assert_eq!(verified.2["verification"]["status"], "verified");

    // Un-verify as the server, then verification by link.
    let unverify = with_body(sample("patch.json", &id), &json!({ "is_verified": false }));
    expect(&s.patch.call(unverify).await, 200, None);
    let body =
        json!({ "strategy": "email_link", "callback_url": "https://app.example.com/verify?x=1" });
    expect(
        &s.send
            .call(with_body(sample("send-verification.json", &id), &body))
            .await,
        200,
        None,
    );
    let token = link_token(&s.last_mail_text().await).unwrap();
    let check = sample("check-code.json", &id)
        .to_string()
        .replace(TOKEN_PLACEHOLDER, &token);
    let checked = s.attempt.call(serde_json::from_str(&check).unwrap()).await;
    expect(&checked, 200, None);
    assert_eq!(checked.2, json!({ "is_code_valid": true }));
    let verify: Value = serde_json::from_str(
        &sample("verify.json", &id)
            .to_string()
            .replace(TOKEN_PLACEHOLDER, &token),
    )
    .unwrap();
    let done = s.attempt.call(verify.clone()).await;
    expect(&done, 200, None);
    assert_eq!(done.2, json!({ "success": true }));
    expect(
        &s.attempt.call(verify).await,
        409,
        Some("VERIFICATION_CODE_ALREADY_USED"),
    );

    let deleted = s.delete.call(sample("delete.json", &id)).await;
    expect(&deleted, 200, None);
    expect(
        &s.list.call(sample("read.json", &id)).await,
        404,
        Some("CONTACT_CHANNEL_NOT_FOUND"),
    );

    // Nothing secret reached any function's log.
    for f in s.all() {
        let log = f.log();
        assert!(log.contains("request"), "the log was captured: {log}");
        assert!(
            !log.contains(&code) && !log.contains(&token),
            "a secret leaked: {log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn representative_errors_come_back_as_contract_json() {
    let s = stack(&[]).await;
    let server = [("x-server-key", SERVER_KEY)];
    let body = json!({ "user_id": "alice", "type": "email", "value": "alice@example.com", "used_for_auth": true });
    let created = s
        .create
        .call(api_gateway_event("POST", BASE, "", Some(&body), &server))
        .await;
    expect(&created, 201, None);
    let id = created.2["id"].as_str().unwrap().to_owned();
    let one = format!("{BASE}/alice/{id}");

    let nobody = api_gateway_event("GET", BASE, "user_id=alice", None, &[]);
    expect(&s.list.call(nobody).await, 401, Some("UNAUTHENTICATED"));
    let bearer = format!("Bearer {}", client_token("mallory"));
    let mallory = [("authorization", bearer.as_str())];
    expect(
        &s.list
            .call(api_gateway_event("GET", &one, "", None, &mallory))
            .await,
        403,
        Some("FORBIDDEN"),
    );
    let bearer = format!("Bearer {}", client_token("alice"));
    let alice = [("authorization", bearer.as_str())];
    expect(
        &s.list
            .call(api_gateway_event("GET", &one, "", None, &alice))
            .await,
        200,
        None,
    );
    // The list function is also API Gateway's $default route: contract JSON for the rest.
    expect(
        &s.list
            .call(api_gateway_event("GET", "/nowhere", "", None, &[]))
            .await,
        404,
        Some("NOT_FOUND"),
    );
    expect(
        &s.list
            .call(api_gateway_event("PUT", &one, "", None, &[]))
            .await,
        405,
        Some("METHOD_NOT_ALLOWED"),
    );

    let mut bad = api_gateway_event("POST", BASE, "", None, &server);
    bad["body"] = "{\"user_id\":".into();
    expect(&s.create.call(bad).await, 400, Some("SCHEMA_ERROR"));
    let big = json!({ "pad": "x".repeat(17 * 1024) });
    expect(
        &s.create
            .call(api_gateway_event("POST", BASE, "", Some(&big), &server))
            .await,
        413,
        Some("PAYLOAD_TOO_LARGE"),
    );
    expect(
        &s.create
            .call(api_gateway_event("POST", BASE, "", Some(&body), &server))
            .await,
        409,
        Some("CONTACT_CHANNEL_ALREADY_EXISTS"),
    );

    let send = format!("{one}/send-verification-code");
    let evil = json!({ "callback_url": "https://evil.example.com/" });
    expect(
        &s.send
            .call(api_gateway_event("POST", &send, "", Some(&evil), &alice))
            .await,
        400,
        Some("REDIRECT_URL_NOT_WHITELISTED"),
    );
    let code_body = json!({ "strategy": "email_code" });
    expect(
        &s.send
            .call(api_gateway_event(
                "POST",
                &send,
                "",
                Some(&code_body),
                &alice,
            ))
            .await,
        200,
        None,
    );
    let code = six_digits(&s.last_mail_text().await).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let attempt = format!("{one}/attempt-verification");
    for remaining in [4, 3, 2, 1] {
        let got = s
            .attempt
            .call(api_gateway_event(
                "POST",
                &attempt,
                "",
                Some(&json!({ "code": wrong })),
                &alice,
            ))
            .await;
        expect(&got, 400, Some("VERIFICATION_CODE_INCORRECT"));
        assert_eq!(got.2["details"]["attempts_remaining"], remaining);
    }
    // The fifth wrong guess burns the code: even the right one is refused after it.
    let fifth = api_gateway_event(
        "POST",
        &attempt,
        "",
        Some(&json!({ "code": wrong })),
        &alice,
    );
    expect(
        &s.attempt.call(fifth).await,
        400,
        Some("VERIFICATION_CODE_MAX_ATTEMPTS_REACHED"),
    );
    let right = api_gateway_event("POST", &attempt, "", Some(&json!({ "code": code })), &alice);
    expect(
        &s.attempt.call(right).await,
        400,
        Some("VERIFICATION_CODE_MAX_ATTEMPTS_REACHED"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_mail_is_502_through_the_send_binary() {
    let (env, _) = env(&[("MAIL_FROM", "nobody@unverified.example")]).await;
    let create = Function::start("cc-create", &env).await;
    let send = Function::start("cc-send-verification", &env).await;
    let server = [("x-server-key", SERVER_KEY)];
    let body = json!({ "user_id": "bob", "type": "email", "value": "bob@example.com", "used_for_auth": false });
    let id = create
        .call(api_gateway_event("POST", BASE, "", Some(&body), &server))
        .await
        .2["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{BASE}/bob/{id}/send-verification-code");
    let got = send
        .call(api_gateway_event(
            "POST",
            &path,
            "",
            Some(&json!({ "strategy": "email_code" })),
            &server,
        ))
        .await;
    expect(&got, 502, Some("EMAIL_DELIVERY_FAILED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_without_its_required_variables_reports_an_init_error_naming_them() {
    let mut f = Function::start("cc-send-verification", &moto().env()).await;
    let status = f
        .exit_status(Duration::from_secs(15))
        .await
        .expect("the function exits");
    assert!(!status.success());
    let (kind, body) = f
        .api
        .init_error()
        .expect("an init error was reported to the Runtime API");
    assert_eq!(kind, "Runtime.ConfigError");
    let message = body["errorMessage"].as_str().unwrap();
    for name in ["VERIFICATION_SECRET", "TABLE_NAME", "MAIL_FROM"] {
        assert!(message.contains(name), "{message} should name {name}");
    }
    assert_eq!(
        f.api.next_polls(),
        0,
        "no invocation is fetched after a failed init"
    );
    assert!(
        f.log().contains("VERIFICATION_SECRET"),
        "and one log line names them: {}",
        f.log()
    );
}
