//! Black-box tests of email verification (docs/api.md §5.6–5.7) against the spawned local server.
//! Codes and links are read from the local mailbox, never from the store.

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cc_tests::{As, LocalServer, client, first_url, link_token};
use reqwest::Method;
use serde_json::json;

const CALLBACK: &str = "http://localhost:5173/verify";

async fn setup(env: &[(&str, &str)]) -> (LocalServer, cc_tests::Api, String) {
    let server = LocalServer::start(env).await;
    let api = server.api();
    let id = api.create_ok("alice", "alice@example.com", true).await;
    (server, api, id)
}

fn code_body() -> serde_json::Value {
    json!({ "strategy": "email_code" })
}

fn link_body() -> serde_json::Value {
    json!({ "strategy": "email_link", "callback_url": CALLBACK })
}

#[tokio::test]
async fn a_code_sent_by_mail_verifies_the_channel() {
    let (server, api, id) = setup(&[("APP_NAME", "Acme")]).await;
    let reply = api
        .send_verification(&client("alice"), "me", &id, code_body())
        .await;
    let sent = reply.assert_ok(200).clone();
    assert_eq!(sent["success"], true);
    assert_eq!(sent["strategy"], "email_code");
    let expires = sent["expires_at_millis"].as_i64().unwrap();
    let mail = api.last_mail_to("alice@example.com").await;
    assert!(mail["subject"].as_str().unwrap().contains("Acme"));
    assert!(mail["text"].as_str().unwrap().contains("10 minutes"));
    if server.backend == cc_tests::Backend::Local {
        assert!(mail["sent_at_millis"].as_i64().is_some());
    }
    let channel = api.read(&As::Server, "alice", &id).await.body;
    assert_eq!(
        channel["verification"],
        json!({ "status": "pending", "strategy": "email_code", "attempts": 0, "expires_at_millis": expires })
    );
    let code = api.code_sent_to("alice@example.com").await;
    let reply = api.attempt(&client("alice"), "alice", &id, &code).await;
    let c = reply.assert_ok(200);
    assert_eq!(c["is_verified"], true);
    assert_eq!(c["verification"]["status"], "verified");
    api.attempt(&client("alice"), "alice", &id, &code)
        .await
        .assert_error(409, "EMAIL_ALREADY_VERIFIED");
    api.send_verification(&As::Server, "alice", &id, code_body())
        .await
        .assert_error(409, "EMAIL_ALREADY_VERIFIED");
}

#[tokio::test]
async fn a_link_sent_by_mail_verifies_the_channel_and_keeps_the_callback_query() {
    let (_server, api, id) = setup(&[]).await;
    let body = json!({ "callback_url": "http://localhost:5173/verify?lang=en&code=stale&x=%2F" });
    let reply = api.send_verification(&As::Server, "alice", &id, body).await;
    assert_eq!(reply.assert_ok(200)["strategy"], "email_link");
    let mail = api.last_mail_to("alice@example.com").await;
    let url = first_url(mail["text"].as_str().unwrap()).unwrap();
    let token = link_token(mail["text"].as_str().unwrap()).unwrap();
    assert!(
        url.starts_with("http://localhost:5173/verify?lang=en&x=%2F&code="),
        "{url}"
    );
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    assert!(mail["html"].as_str().unwrap().contains(&token));
    assert!(mail["text"].as_str().unwrap().contains("24 hours"));

    let reply = api.check(&token).await;
    assert_eq!(reply.assert_ok(200), &json!({ "is_code_valid": true }));
    // Checking does not use the token up.
    assert_eq!(
        api.read(&As::Server, "alice", &id).await.body["verification"]["status"],
        "pending"
    );
    let reply = api.verify(&token).await;
    assert_eq!(reply.assert_ok(200), &json!({ "success": true }));
    let c = api.read(&As::Server, "alice", &id).await.body;
    assert_eq!(
        (
            c["is_verified"].clone(),
            c["verification"]["status"].clone()
        ),
        (json!(true), json!("verified"))
    );
    api.verify(&token)
        .await
        .assert_error(409, "VERIFICATION_CODE_ALREADY_USED");
    api.check(&token)
        .await
        .assert_error(409, "VERIFICATION_CODE_ALREADY_USED");
}

#[tokio::test]
async fn not_found_answers_for_unknown_channels_codes_and_tokens() {
    let (_server, api, id) = setup(&[]).await;
    let none = "00000000-0000-4000-8000-000000000000";
    api.send_verification(&As::Server, "alice", none, code_body())
        .await
        .assert_error(404, "CONTACT_CHANNEL_NOT_FOUND");
    api.attempt(&As::Server, "alice", none, "123456")
        .await
        .assert_error(404, "CONTACT_CHANNEL_NOT_FOUND");
    api.attempt(&As::Server, "alice", &id, "123456")
        .await
        .assert_error(404, "VERIFICATION_CODE_NOT_FOUND");
    api.verify("no-such-token")
        .await
        .assert_error(404, "VERIFICATION_CODE_NOT_FOUND");
    api.check("no-such-token")
        .await
        .assert_error(404, "VERIFICATION_CODE_NOT_FOUND");
    // An outstanding link is not a code, and a code is not a link token.
    api.send_verification(&As::Server, "alice", &id, link_body())
        .await
        .assert_ok(200);
    api.attempt(&As::Server, "alice", &id, "123456")
        .await
        .assert_error(404, "VERIFICATION_CODE_NOT_FOUND");
    api.send_verification(&As::Server, "alice", &id, code_body())
        .await
        .assert_ok(200);
    let code = api.code_sent_to("alice@example.com").await;
    api.verify(&code)
        .await
        .assert_error(404, "VERIFICATION_CODE_NOT_FOUND");
}

#[tokio::test]
async fn bad_verification_input_is_a_schema_error_and_spends_no_guess() {
    let (_server, api, id) = setup(&[]).await;
    api.send_verification(&As::Server, "alice", &id, code_body())
        .await
        .assert_ok(200);
    for bad in ["12345", "1234567", "abcdef", " 12345"] {
        api.attempt(&As::Server, "alice", &id, bad)
            .await
            .assert_error(400, "SCHEMA_ERROR");
    }
    let path = format!("/api/v1/contact-channels/alice/{id}/attempt-verification");
    api.send(
        Method::POST,
        &path,
        &As::Server,
        Some(json!({ "code": 123456 })),
    )
    .await
    .assert_error(400, "SCHEMA_ERROR");
    api.send(Method::POST, &path, &As::Server, Some(json!({})))
        .await
        .assert_error(400, "SCHEMA_ERROR");
    assert_eq!(
        api.read(&As::Server, "alice", &id).await.body["verification"]["attempts"],
        0
    );
    for body in [
        json!({ "strategy": "sms" }),
        json!({ "strategy": "email_link" }),
        json!({ "callback_url": "javascript:alert(1)" }),
        json!({ "callback_url": "/relative" }),
        json!({ "strategy": "email_code", "extra": true }),
    ] {
        api.send_verification(&As::Server, "alice", &id, body)
            .await
            .assert_error(400, "SCHEMA_ERROR");
    }
    api.send(
        Method::POST,
        "/api/v1/contact-channels/verify",
        &As::Nobody,
        Some(json!({})),
    )
    .await
    .assert_error(400, "SCHEMA_ERROR");
}

#[tokio::test]
async fn callback_urls_must_match_the_allow_list_by_origin() {
    let allow = "https://app.example.com,https://*.example.org,http://localhost:*";
    let (_server, api, id) = setup(&[("ALLOWED_CALLBACK_URLS", allow)]).await;
    for ok in [
        "https://app.example.com/verify",
        "https://APP.example.com:443/v?x=1",
        "https://a.example.org/v",
        "https://a.b.example.org/v",
        "http://localhost/v",
        "http://localhost:8080/v",
    ] {
        let reply = api
            .send_verification(&As::Server, "alice", &id, json!({ "callback_url": ok }))
            .await;
        assert_eq!(reply.status, 200, "{ok}: {}", reply.text);
    }
    for refused in [
        "https://example.org/v",
        "https://app.example.com.evil.com/v",
        "https://evilexample.org/v",
        "https://user:pw@app.example.com/v",
        "https://app.example.com@evil.com/v",
        "http://app.example.com/v",
        "https://app.example.com:8443/v",
        "https://localhost/v",
    ] {
        let reply = api
            .send_verification(
                &As::Server,
                "alice",
                &id,
                json!({ "callback_url": refused }),
            )
            .await;
        reply.assert_error(400, "REDIRECT_URL_NOT_WHITELISTED");
    }
    // The code strategy checks its optional page the same way, and links to it unchanged.
    let body = json!({ "strategy": "email_code", "callback_url": "https://evil.com/" });
    api.send_verification(&As::Server, "alice", &id, body)
        .await
        .assert_error(400, "REDIRECT_URL_NOT_WHITELISTED");
    let body = json!({ "strategy": "email_code", "callback_url": "https://app.example.com/enter-code?x=1" });
    api.send_verification(&As::Server, "alice", &id, body)
        .await
        .assert_ok(200);
    let mail = api.last_mail_to("alice@example.com").await;
    assert!(
        mail["text"]
            .as_str()
            .unwrap()
            .contains("https://app.example.com/enter-code?x=1")
    );
    // 409 comes before the allow-list.
    api.patch(&As::Server, "alice", &id, json!({ "is_verified": true }))
        .await
        .assert_ok(200);
    let reply = api
        .send_verification(
            &As::Server,
            "alice",
            &id,
            json!({ "callback_url": "https://evil.com/" }),
        )
        .await;
    reply.assert_error(409, "EMAIL_ALREADY_VERIFIED");
}

#[tokio::test]
async fn sending_again_replaces_the_outstanding_code_or_link() {
    let (_server, api, id) = setup(&[]).await;
    api.send_verification(&As::Server, "alice", &id, link_body())
        .await
        .assert_ok(200);
    let first_link = api.token_sent_to("alice@example.com").await;
    api.send_verification(&As::Server, "alice", &id, link_body())
        .await
        .assert_ok(200);
    let second_link = api.token_sent_to("alice@example.com").await;
    assert_ne!(first_link, second_link);
    api.verify(&first_link)
        .await
        .assert_error(404, "VERIFICATION_CODE_NOT_FOUND");

    api.send_verification(&As::Server, "alice", &id, code_body())
        .await
        .assert_ok(200);
    let first_code = api.code_sent_to("alice@example.com").await;
    api.verify(&second_link)
        .await
        .assert_error(404, "VERIFICATION_CODE_NOT_FOUND");
    api.send_verification(&As::Server, "alice", &id, code_body())
        .await
        .assert_ok(200);
    let second_code = api.code_sent_to("alice@example.com").await;
    if first_code != second_code {
        let reply = api.attempt(&As::Server, "alice", &id, &first_code).await;
        reply.assert_error(400, "VERIFICATION_CODE_INCORRECT");
    }
    api.attempt(&As::Server, "alice", &id, &second_code)
        .await
        .assert_ok(200);
}

#[tokio::test]
async fn cooldown_answers_429_with_retry_after_and_keeps_the_code() {
    let (_server, api, id) = setup(&[("SEND_COOLDOWN_SECONDS", "30")]).await;
    api.send_verification(&As::Server, "alice", &id, code_body())
        .await
        .assert_ok(200);
    let code = api.code_sent_to("alice@example.com").await;
    let reply = api
        .send_verification(&As::Server, "alice", &id, code_body())
        .await;
    reply.assert_error(429, "RATE_LIMITED");
    let wait: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "retry-after {wait}");
    assert_eq!(api.mailbox().await.len(), 1);
    api.attempt(&As::Server, "alice", &id, &code)
        .await
        .assert_ok(200);
}

#[tokio::test]
async fn daily_cap_counts_per_address_across_channels_and_users() {
    let (_server, api, id) = setup(&[("MAX_SENDS_PER_DAY", "2")]).await;
    api.send_verification(&As::Server, "alice", &id, code_body())
        .await
        .assert_ok(200);
    api.send_verification(&As::Server, "alice", &id, code_body())
        .await
        .assert_ok(200);
    let reply = api
        .send_verification(&As::Server, "alice", &id, code_body())
        .await;
    reply.assert_error(429, "RATE_LIMITED");
    let wait: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((86_000..=86_400).contains(&wait), "retry-after {wait}");
    // Deleting and re-creating does not reset it, nor does another user with the address.
    api.delete(&As::Server, "alice", &id).await.assert_ok(200);
    let again = api.create_ok("alice", "alice@example.com", false).await;
    api.send_verification(&As::Server, "alice", &again, code_body())
        .await
        .assert_error(429, "RATE_LIMITED");
    let bob = api.create_ok("bob", "Alice@Example.com", false).await;
    api.send_verification(&As::Server, "bob", &bob, code_body())
        .await
        .assert_error(429, "RATE_LIMITED");
    // Another address is unaffected.
    let other = api.create_ok("bob", "bob@example.com", false).await;
    api.send_verification(&As::Server, "bob", &other, code_body())
        .await
        .assert_ok(200);
}

#[tokio::test]
async fn when_both_limits_apply_retry_after_is_the_longer_wait() {
    let (_server, api, id) =
        setup(&[("SEND_COOLDOWN_SECONDS", "30"), ("MAX_SENDS_PER_DAY", "1")]).await;
    api.send_verification(&As::Server, "alice", &id, code_body())
        .await
        .assert_ok(200);
    let reply = api
        .send_verification(&As::Server, "alice", &id, code_body())
        .await;
    reply.assert_error(429, "RATE_LIMITED");
    let wait: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!(wait > 86_000, "retry-after {wait}");
}

#[tokio::test]
async fn codes_and_links_stop_working_at_their_expiry() {
    let (_server, api, id) = setup(&[("CODE_TTL_SECONDS", "1"), ("LINK_TTL_SECONDS", "1")]).await;
    let reply = api
        .send_verification(&As::Server, "alice", &id, code_body())
        .await;
    let expires = reply.assert_ok(200)["expires_at_millis"].as_i64().unwrap();
    let code = api.code_sent_to("alice@example.com").await;
    let mail = api.last_mail_to("alice@example.com").await;
    assert!(mail["text"].as_str().unwrap().contains("1 second"));
    wait_past(expires).await;
    api.attempt(&As::Server, "alice", &id, &code)
        .await
        .assert_error(400, "VERIFICATION_CODE_EXPIRED");
    let c = api.read(&As::Server, "alice", &id).await.body;
    assert_eq!(c["verification"]["status"], "expired");
    assert_eq!(c["is_verified"], false);

    let reply = api
        .send_verification(&As::Server, "alice", &id, link_body())
        .await;
    let expires = reply.assert_ok(200)["expires_at_millis"].as_i64().unwrap();
    let token = api.token_sent_to("alice@example.com").await;
    wait_past(expires).await;
    api.check(&token)
        .await
        .assert_error(400, "VERIFICATION_CODE_EXPIRED");
    api.verify(&token)
        .await
        .assert_error(400, "VERIFICATION_CODE_EXPIRED");
}

#[tokio::test]
async fn a_used_link_past_its_lifetime_answers_expired() {
    let (_server, api, id) = setup(&[("LINK_TTL_SECONDS", "1")]).await;
    let reply = api
        .send_verification(&As::Server, "alice", &id, link_body())
        .await;
    let expires = reply.assert_ok(200)["expires_at_millis"].as_i64().unwrap();
    let token = api.token_sent_to("alice@example.com").await;
    api.verify(&token).await.assert_ok(200);
    wait_past(expires).await;
    api.verify(&token)
        .await
        .assert_error(400, "VERIFICATION_CODE_EXPIRED");
}

async fn wait_past(expires_at_millis: i64) {
    let now = contact_channels::domain::now_millis();
    let wait = u64::try_from(expires_at_millis - now + 50).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

#[tokio::test]
async fn the_fifth_wrong_guess_burns_the_code() {
    let (_server, api, id) = setup(&[]).await;
    api.send_verification(&As::Server, "alice", &id, code_body())
        .await
        .assert_ok(200);
    let code = api.code_sent_to("alice@example.com").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for remaining in [4, 3, 2, 1] {
        let reply = api.attempt(&client("alice"), "alice", &id, wrong).await;
        reply.assert_error(400, "VERIFICATION_CODE_INCORRECT");
        assert_eq!(
            reply.body["details"],
            json!({ "attempts_remaining": remaining })
        );
    }
    api.attempt(&client("alice"), "alice", &id, wrong)
        .await
        .assert_error(400, "VERIFICATION_CODE_MAX_ATTEMPTS_REACHED");
    api.attempt(&client("alice"), "alice", &id, &code)
        .await
        .assert_error(400, "VERIFICATION_CODE_MAX_ATTEMPTS_REACHED");
    let c = api.read(&As::Server, "alice", &id).await.body;
    assert_eq!(c["verification"]["status"], "failed");
    assert_eq!(c["verification"]["attempts"], 5);
    // A new send starts over.
    api.send_verification(&As::Server, "alice", &id, code_body())
        .await
        .assert_ok(200);
    let code = api.code_sent_to("alice@example.com").await;
    api.attempt(&client("alice"), "alice", &id, &code)
        .await
        .assert_ok(200);
}

#[tokio::test]
async fn twenty_concurrent_wrong_guesses_get_at_most_four_incorrect_answers() {
    let (_server, api, id) = setup(&[]).await;
    api.send_verification(&As::Server, "alice", &id, code_body())
        .await
        .assert_ok(200);
    let code = api.code_sent_to("alice@example.com").await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (api, id) = (api.clone(), id.clone());
            let guess = format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
            tokio::spawn(async move { api.attempt(&As::Server, "alice", &id, &guess).await })
        })
        .collect();
    let mut incorrect = 0;
    for t in tasks {
        let reply = t.await.unwrap();
        match reply.code() {
            "VERIFICATION_CODE_INCORRECT" => incorrect += 1,
            "VERIFICATION_CODE_MAX_ATTEMPTS_REACHED" => {}
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert!(
        incorrect <= 4,
        "{incorrect} guesses were answered INCORRECT"
    );
    api.attempt(&As::Server, "alice", &id, &code)
        .await
        .assert_error(400, "VERIFICATION_CODE_MAX_ATTEMPTS_REACHED");
}

#[tokio::test]
async fn changing_the_value_or_deleting_kills_outstanding_codes_and_links() {
    let (_server, api, id) = setup(&[]).await;
    api.send_verification(&As::Server, "alice", &id, code_body())
        .await
        .assert_ok(200);
    let code = api.code_sent_to("alice@example.com").await;
    api.patch(
        &As::Server,
        "alice",
        &id,
        json!({ "value": "new@example.com" }),
    )
    .await
    .assert_ok(200);
    api.attempt(&As::Server, "alice", &id, &code)
        .await
        .assert_error(404, "VERIFICATION_CODE_NOT_FOUND");

    api.send_verification(&As::Server, "alice", &id, link_body())
        .await
        .assert_ok(200);
    let token = api.token_sent_to("new@example.com").await;
    api.patch(
        &As::Server,
        "alice",
        &id,
        json!({ "value": "newer@example.com" }),
    )
    .await
    .assert_ok(200);
    api.verify(&token)
        .await
        .assert_error(404, "VERIFICATION_CODE_NOT_FOUND");

    api.send_verification(&As::Server, "alice", &id, link_body())
        .await
        .assert_ok(200);
    let token = api.token_sent_to("newer@example.com").await;
    api.delete(&As::Server, "alice", &id).await.assert_ok(200);
    api.verify(&token)
        .await
        .assert_error(404, "VERIFICATION_CODE_NOT_FOUND");
    api.check(&token)
        .await
        .assert_error(404, "VERIFICATION_CODE_NOT_FOUND");
}

#[tokio::test]
async fn a_server_verification_uses_up_the_link_and_an_unverify_retires_a_used_one() {
    let (_server, api, id) = setup(&[]).await;
    api.send_verification(&As::Server, "alice", &id, link_body())
        .await
        .assert_ok(200);
    let token = api.token_sent_to("alice@example.com").await;
    api.patch(&As::Server, "alice", &id, json!({ "is_verified": true }))
        .await
        .assert_ok(200);
    api.verify(&token)
        .await
        .assert_error(404, "VERIFICATION_CODE_NOT_FOUND");

    api.patch(&As::Server, "alice", &id, json!({ "is_verified": false }))
        .await
        .assert_ok(200);
    let c = api.read(&As::Server, "alice", &id).await.body;
    assert_eq!(c["verification"]["status"], "unverified");
    api.send_verification(&As::Server, "alice", &id, link_body())
        .await
        .assert_ok(200);
    let token = api.token_sent_to("alice@example.com").await;
    api.verify(&token).await.assert_ok(200);
    api.patch(&As::Server, "alice", &id, json!({ "is_verified": false }))
        .await
        .assert_ok(200);
    api.verify(&token)
        .await
        .assert_error(404, "VERIFICATION_CODE_NOT_FOUND");
}

#[tokio::test]
async fn a_refused_mail_is_502_and_leaves_no_usable_code() {
    // The outbox refuses `.invalid` recipients; SES refuses an unverified sender.
    let (_server, api, _) = setup(&[
        ("SEND_COOLDOWN_SECONDS", "30"),
        ("MAX_SENDS_PER_DAY", "1"),
        ("MAIL_FROM", "unverified@nowhere.example"),
    ])
    .await;
    let id = api.create_ok("alice", "alice@example.invalid", false).await;
    let reply = api
        .send_verification(&As::Server, "alice", &id, code_body())
        .await;
    reply.assert_error(502, "EMAIL_DELIVERY_FAILED");
    let c = api.read(&As::Server, "alice", &id).await.body;
    assert_eq!(
        c["verification"],
        json!({ "status": "unverified", "strategy": null, "attempts": 0, "expires_at_millis": null })
    );
    api.attempt(&As::Server, "alice", &id, "123456")
        .await
        .assert_error(404, "VERIFICATION_CODE_NOT_FOUND");
    // Neither the cooldown nor the daily cap was consumed: the next try is refused by the
    // mail service again, not rate-limited.
    let reply = api
        .send_verification(&As::Server, "alice", &id, link_body())
        .await;
    reply.assert_error(502, "EMAIL_DELIVERY_FAILED");
    assert!(api.mailbox().await.is_empty());
}

#[tokio::test]
async fn no_code_or_token_appears_in_the_logs_of_a_full_verification_run() {
    let (server, api, id) = setup(&[]).await;
    api.send_verification(&client("alice"), "alice", &id, code_body())
        .await
        .assert_ok(200);
    let code = api.code_sent_to("alice@example.com").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    api.attempt(&client("alice"), "alice", &id, wrong)
        .await
        .assert_error(400, "VERIFICATION_CODE_INCORRECT");
    api.attempt(&client("alice"), "alice", &id, &code)
        .await
        .assert_ok(200);
    let other = api.create_ok("alice", "second@example.com", false).await;
    api.send_verification(&client("alice"), "alice", &other, link_body())
        .await
        .assert_ok(200);
    let token = api.token_sent_to("second@example.com").await;
    api.check(&token).await.assert_ok(200);
    api.verify(&token).await.assert_ok(200);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let logs = server.logs();
    assert!(
        logs.matches("request").count() >= 8,
        "the log was captured: {logs}"
    );
    assert!(!logs.contains(&code), "the code leaked into the log");
    assert!(!logs.contains(&token), "the token leaked into the log");
    // The console mailbox (standard output) is where local mail is meant to be shown.
    if server.backend == cc_tests::Backend::Local {
        assert!(server.console().contains(&code));
    }
}

#[tokio::test]
async fn the_mailbox_page_lists_mail_with_clickable_links() {
    // The mailbox pages are a feature of local mode, whatever the suite's backend.
    let _server = LocalServer::start_with(cc_tests::Backend::Local, &[]).await;
    let api = _server.api();
    let id = api.create_ok("alice", "alice@example.com", true).await;
    api.send_verification(&As::Server, "alice", &id, link_body())
        .await
        .assert_ok(200);
    let token = api.token_sent_to("alice@example.com").await;
    let reply = api
        .http
        .get(format!("{}/_dev/mailbox", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert!(
        reply.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = reply.text().await.unwrap();
    assert!(
        html.contains(&format!("<a href=\"{CALLBACK}?code={token}\">")),
        "{html}"
    );
    let reply = api
        .send(Method::POST, "/_dev/mailbox.json", &As::Nobody, None)
        .await;
    reply.assert_error(405, "METHOD_NOT_ALLOWED");
    // A link to the dev verification page verifies when a person clicks it.
    let body = json!({ "callback_url": format!("{}/_dev/verify", api.base) });
    let other = api.create_ok("alice", "second@example.com", false).await;
    api.send_verification(&As::Server, "alice", &other, body)
        .await
        .assert_ok(200);
    let mail = api.last_mail_to("second@example.com").await;
    let url = first_url(mail["text"].as_str().unwrap()).unwrap();
    let page = api.http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("is verified"));
    assert_eq!(
        api.read(&As::Server, "alice", &other).await.body["is_verified"],
        true
    );
    let again = api.http.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 409);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("VERIFICATION_CODE_ALREADY_USED")
    );
    // The mailbox survives a restart.
    let server = _server.restart().await;
    assert_eq!(server.api().mailbox().await.len(), 2);
}
