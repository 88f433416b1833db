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
        env.retain(|(name, _)| name != k);
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

    // Counted as a delivery failure, logged by channel id, never by address.
    let lines = json_lines(&send);
    let docs: Vec<Value> = lines
        .iter()
        .filter(|l| l.get("_aws").is_some())
        .cloned()
        .collect();
    docs.iter().for_each(assert_valid_emf);
    assert_eq!(metric_sum(&docs, "MailDeliveryFailed", |_| true), 1);
    assert_eq!(metric_sum(&docs, "VerificationMailSent", |_| true), 0);
    let refused = lines
        .iter()
        .find(|l| l["message"] == "verification mail refused by the mail service")
        .expect("the refusal is logged");
    assert_eq!(refused["channel_id"], id.as_str());
    let log = send.log();
    assert!(
        !log.contains("bob@example.com") && !log.contains("nobody@unverified"),
        "{log}"
    );
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

/// The lines a function wrote, each parsed as JSON (a line that is not JSON fails the test).
fn json_lines(f: &Function) -> Vec<Value> {
    f.log()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect()
}

/// The log lines (not the metric documents) of a function.
fn lines_of(f: &Function) -> Vec<Value> {
    json_lines(f)
        .into_iter()
        .filter(|l| l.get("_aws").is_none())
        .collect()
}

/// The parts of an EMF document the specification requires, checked against the values.
fn assert_valid_emf(doc: &Value) {
    let aws = &doc["_aws"];
    assert!(
        aws["Timestamp"]
            .as_i64()
            .is_some_and(|t| t > 1_700_000_000_000),
        "{doc}"
    );
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics");
    assert!(!directives.is_empty(), "{doc}");
    for d in directives {
        assert_eq!(d["Namespace"], "ContactChannels", "{doc}");
        for set in d["Dimensions"].as_array().expect("Dimensions") {
            let set = set.as_array().expect("a dimension set");
            assert!(!set.is_empty() && set.len() <= 30, "{doc}");
            for name in set {
                let name = name.as_str().expect("a dimension name");
                assert!(doc[name].is_string(), "dimension {name} has a value: {doc}");
            }
        }
        let metrics = d["Metrics"].as_array().expect("Metrics");
        assert!(!metrics.is_empty() && metrics.len() <= 100, "{doc}");
        for m in metrics {
            let name = m["Name"].as_str().expect("Name");
            assert!(doc[name].is_number(), "metric {name} has a value: {doc}");
            assert!(
                matches!(m["Unit"].as_str(), Some("Count" | "Milliseconds")),
                "{doc}"
            );
        }
    }
}

/// The sum of `metric` over the EMF documents of `docs`, where `filter` holds.
fn metric_sum(docs: &[Value], metric: &str, filter: impl Fn(&Value) -> bool) -> u64 {
    docs.iter()
        .filter(|d| filter(d))
        .filter_map(|d| d[metric].as_u64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_is_json_with_the_request_ids_and_no_secret_or_address() {
    let s = stack(&[("SEND_COOLDOWN_SECONDS", "30")]).await;
    let bearer = format!("Bearer {}", client_token("carol"));
    let carol = [("authorization", bearer.as_str())];
    let server = [("x-server-key", SERVER_KEY)];
    let address = "carol.private@example.org";
    let body =
        json!({ "user_id": "carol", "type": "email", "value": address, "used_for_auth": false });
    let created = s
        .create
        .call(api_gateway_event("POST", BASE, "", Some(&body), &server))
        .await;
    expect(&created, 201, None);
    let id = created.2["id"].as_str().unwrap().to_owned();
    let one = format!("{BASE}/carol/{id}");
    let send = format!("{one}/send-verification-code");
    let by_code = json!({ "strategy": "email_code" });
    let sent = api_gateway_event("POST", &send, "", Some(&by_code), &carol);
    expect(&s.send.call(sent.clone()).await, 200, None);
    // The cooldown refuses a second send at once.
    expect(&s.send.call(sent).await, 429, Some("RATE_LIMITED"));
    let code = six_digits(&s.last_mail_text().await).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let attempt = format!("{one}/attempt-verification");
    let guess =
        |c: &str| api_gateway_event("POST", &attempt, "", Some(&json!({ "code": c })), &carol);
    expect(
        &s.attempt.call(guess(wrong)).await,
        400,
        Some("VERIFICATION_CODE_INCORRECT"),
    );
    let apigw_id = "apigw-request-id-for-the-log-test";
    let mut right = guess(&code);
    right["requestContext"]["requestId"] = apigw_id.into();
    expect(&s.attempt.call(right).await, 200, None);
    let missing = api_gateway_event(
        "GET",
        &format!("{BASE}/carol/{PLACEHOLDER}"),
        "",
        None,
        &carol,
    );
    expect(
        &s.list.call(missing).await,
        404,
        Some("CONTACT_CHANNEL_NOT_FOUND"),
    );

    let secrets = [
        code.as_str(),
        SERVER_KEY,
        &bearer["Bearer ".len()..],
        "an-hmac-key-of-at-least-32-bytes-for-tests",
        cc_tests::JWT_SECRET,
        address,
        s.sender.as_str(),
    ];
    let mut docs = Vec::new();
    let mut requests = Vec::new();
    for f in [&s.create, &s.list, &s.send, &s.attempt] {
        let lines = json_lines(f);
        assert!(!lines.is_empty(), "the log was captured");
        for (line, raw) in lines.iter().zip(f.log().lines()) {
            for secret in secrets {
                assert!(!raw.contains(secret), "{secret:?} leaked: {raw}");
            }
            assert!(
                !raw.contains('@'),
                "an address (or part of one) leaked: {raw}"
            );
            if line.get("_aws").is_some() {
                assert_valid_emf(line);
                docs.push(line.clone());
                continue;
            }
            for field in ["level", "message", "target", "function"] {
                assert!(line[field].is_string(), "{field} in {line}");
            }
            // Every line is written while serving a request, and says which.
            let request_id = line["request_id"].as_str().unwrap_or_default();
            assert!(
                request_id.starts_with("req-"),
                "a Lambda request id in {line}"
            );
            assert!(line["apigw_request_id"].is_string(), "{line}");
            assert!(line["route"].is_string(), "{line}");
            assert!(line["cold_start"].is_boolean(), "{line}");
            assert!(line["function_name"].is_string(), "{line}");
            if line["message"] == "request" {
                requests.push(line.clone());
            }
        }
    }
    let find = |route: &str, status: u64| {
        requests
            .iter()
            .find(|l| l["route"] == route && l["status"] == status)
            .unwrap_or_else(|| panic!("a request line for {route} {status} in {requests:?}"))
    };
    let ok = find("attempt-verification", 200);
    assert_eq!(ok["apigw_request_id"], apigw_id);
    assert_eq!(ok["function"], "attempt");
    assert_eq!(ok["cold_start"], false, "the second request of the process");
    assert!(ok["latency_ms"].is_u64());
    assert!(ok.get("error_code").is_none());
    assert_eq!(find("create", 201)["cold_start"], true);
    let limited = find("send-verification", 429);
    assert_eq!(limited["error_code"], "RATE_LIMITED");
    assert_eq!(
        limited["channel_id"],
        id.as_str(),
        "lines name the channel by id"
    );
    assert!(
        lines_of(&s.send).iter().any(|l| l["limit"] == "cooldown"
            && l["retry_after_seconds"].is_u64()
            && l["channel_id"] == id.as_str()),
        "the refusal says which limit"
    );
    assert_eq!(find("read", 404)["error_code"], "CONTACT_CHANNEL_NOT_FOUND");
    assert_eq!(find("attempt-verification", 400)["level"], "INFO");

    // The metrics of what happened, by function and route.
    let route = |r: &'static str| move |d: &Value| d["Route"] == r;
    let code_sends = |d: &Value| d["Strategy"] == "email_code";
    assert_eq!(metric_sum(&docs, "VerificationMailSent", code_sends), 1);
    assert_eq!(
        metric_sum(&docs, "RateLimited", |d| d["Limit"] == "cooldown"),
        1
    );
    assert_eq!(metric_sum(&docs, "VerificationIncorrect", |_| true), 1);
    assert_eq!(
        metric_sum(&docs, "VerificationSucceeded", |d| d["Strategy"]
            == "email_code"),
        1
    );
    assert_eq!(metric_sum(&docs, "VerificationBurned", |_| true), 0);
    assert_eq!(metric_sum(&docs, "DynamoDbRequests", route("create")), 1);
    assert!(metric_sum(&docs, "DynamoDbRequests", route("attempt-verification")) >= 2);
    assert!(
        docs.iter()
            .filter(|d| d["Route"] == "create")
            .all(|d| d["Function"] == "create" && d["ConflictRetries"] == 0)
    );
}

/// Sends a verification mail for the caller's channel `id` through `f`; returns the mail's text.
async fn send_and_read(
    f: &Function,
    id: &str,
    body: &Value,
    auth: &[(&str, &str)],
    sender: &str,
) -> String {
    let path = format!("{BASE}/me/{id}/send-verification-code");
    let event = api_gateway_event("POST", &path, "", Some(body), auth);
    expect(&f.call(event).await, 200, None);
    moto().sent_mail(sender).await[0]["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_secrets_manager_and_a_rotation_keeps_outstanding_codes_and_links() {
    let moto = moto();
    let old = "the-first-verification-secret-of-at-least-32-bytes";
    let new = "the-second-verification-secret-of-at-least-32-bytes";
    let arn = moto.new_secret(old).await;
    let jwt_arn = moto.new_secret(cc_tests::JWT_SECRET).await;
    let secret_env = [
        ("VERIFICATION_SECRET", ""),
        ("JWT_HS256_SECRET", ""),
        ("VERIFICATION_SECRET_ARN", arn.as_str()),
        ("JWT_HS256_SECRET_ARN", jwt_arn.as_str()),
    ];
    let (env, sender) = env(&secret_env).await;
    assert!(
        env.iter()
            .all(|(k, v)| !k.ends_with("_SECRET") || v.is_empty()),
        "no plaintext secret in the function's environment"
    );
    let create = Function::start("cc-create", &env).await;
    let send = Function::start("cc-send-verification", &env).await;
    let bearer = format!("Bearer {}", client_token("erin"));
    let erin = [("authorization", bearer.as_str())];
    let mut ids = Vec::new();
    for value in ["erin@example.com", "erin.work@example.com"] {
        let body =
            json!({ "user_id": "me", "type": "email", "value": value, "used_for_auth": false });
        let created = create
            .call(api_gateway_event("POST", BASE, "", Some(&body), &erin))
            .await;
        expect(&created, 201, None); // the HS256 key came from Secrets Manager
        ids.push(created.2["id"].as_str().unwrap().to_owned());
    }
    let by_code = json!({ "strategy": "email_code" });
    let by_link = json!({ "strategy": "email_link", "callback_url": "https://app.example.com/v" });
    let code = six_digits(&send_and_read(&send, &ids[0], &by_code, &erin, &sender).await).unwrap();
    let token = link_token(&send_and_read(&send, &ids[1], &by_link, &erin, &sender).await).unwrap();

    // Rotation while both are outstanding; functions started afterwards sign with the new
    // secret and still accept the previous one.
    moto.rotate_secret(&arn, new).await;
    let attempt = Function::start("cc-attempt", &env).await;
    let verify = json!({ "code": token });
    let verified = attempt
        .call(api_gateway_event(
            "POST",
            &format!("{BASE}/verify"),
            "",
            Some(&verify),
            &[],
        ))
        .await;
    expect(&verified, 200, None);
    let path = format!("{BASE}/me/{}/attempt-verification", ids[0]);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let guess = |c: &str| api_gateway_event("POST", &path, "", Some(&json!({ "code": c })), &erin);
    let refused = attempt.call(guess(wrong)).await;
    expect(&refused, 400, Some("VERIFICATION_CODE_INCORRECT"));
    expect(&attempt.call(guess(&code)).await, 200, None);

    // A code sent after the rotation is signed with the new secret: a function that knew only
    // the old one refuses it, one started now accepts it.
    let body = json!({ "user_id": "me", "type": "email", "value": "erin.home@example.com", "used_for_auth": false });
    let third = create
        .call(api_gateway_event("POST", BASE, "", Some(&body), &erin))
        .await
        .2["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let send_now = Function::start("cc-send-verification", &env).await;
    let fresh =
        six_digits(&send_and_read(&send_now, &third, &by_code, &erin, &sender).await).unwrap();
    let path = format!("{BASE}/me/{third}/attempt-verification");
    let guess = api_gateway_event("POST", &path, "", Some(&json!({ "code": fresh })), &erin);
    let stale_env = [
        ("VERIFICATION_SECRET", old),
        ("VERIFICATION_SECRET_ARN", ""),
    ];
    let mut old_env = env.clone();
    old_env.extend(
        stale_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let old_attempt = Function::start("cc-attempt", &old_env).await;
    expect(
        &old_attempt.call(guess.clone()).await,
        400,
        Some("VERIFICATION_CODE_INCORRECT"),
    );
    expect(&attempt.call(guess).await, 200, None);
    for f in [&create, &send, &attempt, &send_now] {
        let log = f.log();
        for secret in [
            old,
            new,
            cc_tests::JWT_SECRET,
            code.as_str(),
            token.as_str(),
        ] {
            assert!(!log.contains(secret), "{secret} leaked: {log}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_arn_that_cannot_be_read_is_an_init_error() {
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nothing-here-AbCdEf";
    let (env, _) = env(&[
        ("VERIFICATION_SECRET", ""),
        ("VERIFICATION_SECRET_ARN", missing),
    ])
    .await;
    let mut f = Function::start("cc-list", &env).await;
    f.exit_status(Duration::from_secs(15))
        .await
        .expect("the function exits");
    let (kind, body) = f.api.init_error().expect("an init error");
    assert_eq!(kind, "Runtime.ConfigError");
    let message = body["errorMessage"].as_str().unwrap();
    assert!(message.contains("VERIFICATION_SECRET_ARN"), "{message}");
    assert_eq!(f.api.next_polls(), 0);
    json_lines(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_started_while_a_secret_is_staged_accepts_codes_signed_after_the_promotion() {
    let moto = moto();
    let arn = moto
        .new_secret("the-first-verification-secret-of-at-least-32-bytes")
        .await;
    let secret_env = [
        ("VERIFICATION_SECRET", ""),
        ("VERIFICATION_SECRET_ARN", arn.as_str()),
    ];
    let (env, sender) = env(&secret_env).await;
    let create = Function::start("cc-create", &env).await;
    let server = [("x-server-key", SERVER_KEY)];
    let body = json!({ "user_id": "fay", "type": "email", "value": "fay@example.com", "used_for_auth": false });
    let created = create
        .call(api_gateway_event("POST", BASE, "", Some(&body), &server))
        .await;
    expect(&created, 201, None);
    let id = created.2["id"].as_str().unwrap().to_owned();

    // Staged: environments started now still sign with the current secret but accept the new.
    let new = moto
        .stage_secret(&arn, "the-second-verification-secret-of-at-least-32-bytes")
        .await;
    let staged = Function::start("cc-attempt", &env).await;
    expect(
        &staged
            .call(api_gateway_event(
                "POST",
                &format!("{BASE}/verify"),
                "",
                Some(&json!({ "code": "x" })),
                &[],
            ))
            .await,
        404,
        Some("VERIFICATION_CODE_NOT_FOUND"),
    );
    // Promoted: a function started now signs with the new secret.
    moto.promote_secret(&arn, &new).await;
    let send = Function::start("cc-send-verification", &env).await;
    let by_code = json!({ "strategy": "email_code" });
    let path = format!("{BASE}/fay/{id}/send-verification-code");
    expect(
        &send
            .call(api_gateway_event(
                "POST",
                &path,
                "",
                Some(&by_code),
                &server,
            ))
            .await,
        200,
        None,
    );
    let text = moto.sent_mail(&sender).await[0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = six_digits(&text).unwrap();
    let path = format!("{BASE}/fay/{id}/attempt-verification");
    let guess = api_gateway_event("POST", &path, "", Some(&json!({ "code": code })), &server);
    expect(&staged.call(guess).await, 200, None);
}

/// A one-route HTTP server for the key set: answers every request with `status` and `body`, and
/// counts the requests.
async fn key_set_server(
    status: u16,
    body: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                if !cc_tests::read_head(&mut socket)
                    .await
                    .ends_with(b"\r\n\r\n")
                {
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    (url, hits)
}

fn rs256_token(user: &str, private_pem: &[u8]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let claims = json!({ "sub": user, "iat": now, "exp": now + 600 });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_pem).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// The JWKS fetcher of the binaries (the SDK's HTTP stack, built on first use): nothing is
/// fetched during Init, the first token fetches the issuer's keys over HTTP, a token signed by
/// another key is refused, and an issuer answering an error status lets no token through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_fetches_the_issuers_key_set_on_first_use_and_checks_tokens_with_it() {
    use contact_channels::auth::testdata::{JWKS, RSA, RSA_OTHER};
    let (url, hits) = key_set_server(200, JWKS).await;
    let (vars, _) = env(&[("JWT_JWKS_URL", &url)]).await;
    let list = Function::start("cc-list", &vars).await;
    let call = |token: String| {
        let bearer = format!("Bearer {token}");
        list.call(api_gateway_event(
            "GET",
            BASE,
            "user_id=me",
            None,
            &[("authorization", &bearer)],
        ))
    };
    let hits_now = || hits.load(std::sync::atomic::Ordering::SeqCst);
    // The harness hands out the first event only once the function has asked for it, so Init
    // is over here.
    assert_eq!(hits_now(), 0, "no key set is fetched during Init");
    expect(&call(rs256_token("alice", RSA)).await, 200, None);
    assert_eq!(hits_now(), 1, "the first token fetched the key set once");
    expect(&call(rs256_token("alice", RSA)).await, 200, None);
    assert_eq!(hits_now(), 1, "the keys are cached");
    expect(
        &call(rs256_token("alice", RSA_OTHER)).await,
        401,
        Some("INVALID_ACCESS_TOKEN"),
    );

    let (url, hits) = key_set_server(503, "{}").await;
    let (vars, _) = env(&[("JWT_JWKS_URL", &url)]).await;
    let list = Function::start("cc-list", &vars).await;
    let bearer = format!("Bearer {}", rs256_token("alice", RSA));
    expect(
        &list
            .call(api_gateway_event(
                "GET",
                BASE,
                "user_id=me",
                None,
                &[("authorization", &bearer)],
            ))
            .await,
        401,
        Some("INVALID_ACCESS_TOKEN"),
    );
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

/// AWS-LC, the SDK's TLS crypto, is built without CPU jitter entropy (`.cargo/config.toml`):
/// with it, each cold start's first TLS handshake spent ~100 ms seeding the random generator
/// (issue 13's bench). The binaries keep their symbol names in the profiles tests build.
#[test]
fn function_binaries_are_built_without_aws_lc_jitter_entropy() {
    let marker = b"jent_read_entropy";
    for name in cc_tests::FUNCTION_BINARIES {
        let bytes = std::fs::read(cc_tests::bin(name)).unwrap();
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker),
            "{name} links AWS-LC's CPU jitter entropy source"
        );
    }
}

/// The service is generic over its store, so a function links only the DynamoDB operations its
/// handlers call: `cc-list` no write at all, only `cc-attempt` (link redemption) `UpdateItem`.
/// Behind `dyn ChannelStore` every function linked every operation of the store. Read from the
/// symbol names, which the binaries keep in the profiles tests build: the functions that must
/// link an operation prove the check can see it.
#[test]
fn each_function_links_only_the_dynamodb_writes_it_makes() {
    let links =
        |bytes: &[u8], marker: &str| bytes.windows(marker.len()).any(|w| w == marker.as_bytes());
    for name in cc_tests::FUNCTION_BINARIES {
        let bytes = std::fs::read(cc_tests::bin(name)).unwrap();
        let transactions = !matches!(name, "cc-list" | "cc-events");
        let updates = name == "cc-attempt";
        assert_eq!(
            links(&bytes, "TransactWriteItemsFluentBuilder"),
            transactions,
            "{name}: TransactWriteItems"
        );
        assert_eq!(
            links(&bytes, "UpdateItemFluentBuilder"),
            updates,
            "{name}: UpdateItem"
        );
    }
}
