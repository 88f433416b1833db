//! Black-box tests of docs/api.md §1, §2 and §5.1–5.5 against the spawned local server.

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cc_tests::{As, LocalServer, Reply, client};
use reqwest::Method;
use serde_json::{Value, json};

const BASE: &str = "/api/v1/contact-channels";

fn body(user: &str, value: &str) -> Value {
    json!({ "user_id": user, "type": "email", "value": value, "used_for_auth": false })
}

#[tokio::test]
async fn create_returns_201_with_the_normalized_channel() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let reply = api
        .create(&client("alice"), json!({ "user_id": "me", "type": "email", "value": "  Alice@Example.COM ", "used_for_auth": true, "is_primary": true }))
        .await;
    let c = reply.assert_ok(201);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(c["user_id"], "alice");
    assert_eq!(c["type"], "email");
    assert_eq!(c["value"], "alice@example.com");
    assert_eq!(c["is_primary"], true);
    assert_eq!(c["is_verified"], false);
    assert_eq!(c["used_for_auth"], true);
    assert!(c["created_at_millis"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(c["id"].as_str().unwrap().len(), 36);
    assert_eq!(
        c["verification"],
        json!({ "status": "unverified", "strategy": null, "attempts": 0, "expires_at_millis": null })
    );
}

#[tokio::test]
async fn create_returns_409_when_the_user_has_the_value_already() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    api.create_ok("alice", "a@example.com", false).await;
    api.create(&As::Server, body("alice", " A@EXAMPLE.com"))
        .await
        .assert_error(409, "CONTACT_CHANNEL_ALREADY_EXISTS");
    // Another user may hold the same value when neither uses it for auth.
    api.create(&As::Server, body("bob", "a@example.com"))
        .await
        .assert_ok(201);
}

#[tokio::test]
async fn create_returns_409_when_value_is_used_for_auth_by_another_user() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    api.create_ok("alice", "a@example.com", true).await;
    let mut b = body("bob", "a@example.com");
    b["used_for_auth"] = json!(true);
    let reply = api.create(&As::Server, b).await;
    reply.assert_error(409, "CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE");
    assert_eq!(reply.body["details"], json!({ "type": "email" }));
    assert!(
        !reply.text.contains("alice"),
        "the response must not say which user"
    );
}

#[tokio::test]
async fn create_returns_409_past_the_per_user_limit() {
    let server = LocalServer::start(&[("MAX_CHANNELS_PER_USER", "2")]).await;
    let api = server.api();
    api.create_ok("alice", "a1@example.com", false).await;
    api.create_ok("alice", "a2@example.com", false).await;
    api.create(&As::Server, body("alice", "a3@example.com"))
        .await
        .assert_error(409, "TOO_MANY_CONTACT_CHANNELS");
    // The duplicate check comes first in the contract's order.
    api.create(&As::Server, body("alice", "a1@example.com"))
        .await
        .assert_error(409, "CONTACT_CHANNEL_ALREADY_EXISTS");
}

#[tokio::test]
async fn only_a_server_may_set_is_verified() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let mut b = body("alice", "a@example.com");
    b["is_verified"] = json!(true);
    let reply = api.create(&client("alice"), b.clone()).await;
    reply.assert_error(403, "FORBIDDEN");
    let reply = api.create(&As::Server, b).await;
    assert_eq!(reply.assert_ok(201)["is_verified"], true);
    assert_eq!(reply.body["verification"]["status"], "verified");
    let id = reply.body["id"].as_str().unwrap();
    api.patch(
        &client("alice"),
        "alice",
        id,
        json!({ "is_verified": false }),
    )
    .await
    .assert_error(403, "FORBIDDEN");
}

#[tokio::test]
async fn create_rejects_bad_input_with_a_schema_error_naming_the_field() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "missing value",
            json!({ "user_id": "a", "type": "email", "used_for_auth": false }),
            "value",
        ),
        (
            "null value",
            json!({ "user_id": "a", "type": "email", "value": null, "used_for_auth": false }),
            "value",
        ),
        (
            "wrong type",
            json!({ "user_id": "a", "type": "email", "value": "a@example.com", "used_for_auth": "yes" }),
            "used_for_auth",
        ),
        (
            "unknown field",
            json!({ "user_id": "a", "type": "email", "value": "a@example.com", "used_for_auth": false, "extra": 1 }),
            "extra",
        ),
        (
            "phone",
            json!({ "user_id": "a", "type": "phone", "value": "a@example.com", "used_for_auth": false }),
            "type",
        ),
        (
            "bad email",
            json!({ "user_id": "a", "type": "email", "value": "not-an-email", "used_for_auth": false }),
            "value",
        ),
        (
            "bad user",
            json!({ "user_id": "a b", "type": "email", "value": "a@example.com", "used_for_auth": false }),
            "user_id",
        ),
        (
            "reserved user",
            json!({ "user_id": "verify", "type": "email", "value": "a@example.com", "used_for_auth": false }),
            "user_id",
        ),
        (
            "number user",
            json!({ "user_id": 7, "type": "email", "value": "a@example.com", "used_for_auth": false }),
            "user_id",
        ),
    ];
    for (what, b, field) in cases {
        let reply = api.create(&As::Server, b).await;
        reply.assert_error(400, "SCHEMA_ERROR");
        assert!(
            reply.body["error"].as_str().unwrap().contains(field),
            "{what}: {}",
            reply.text
        );
    }
    for raw in ["{", "[1]", "\"str\"", "null"] {
        let reply = Reply::from(
            api.request(Method::POST, BASE, &As::Server)
                .header("content-type", "application/json")
                .body(raw)
                .send()
                .await
                .unwrap(),
        )
        .await;
        reply.assert_error(400, "SCHEMA_ERROR");
    }
    // No content-type is fine as long as the body is JSON.
    let raw = body("alice", "a@example.com").to_string();
    let reply = Reply::from(
        api.request(Method::POST, BASE, &As::Server)
            .body(raw)
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply.assert_ok(201);
    // Nothing was half-written by the refused requests.
    let list = api.list(&As::Server, "user_id=a").await;
    assert_eq!(list.assert_ok(200)["items"], json!([]));
}

#[tokio::test]
async fn oversize_body_is_413_before_anything_else() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let big = format!(
        "{{\"user_id\":\"a\",\"pad\":\"{}\"}}",
        "x".repeat(17 * 1024)
    );
    for (method, path) in [
        (Method::POST, BASE.to_owned()),
        (Method::POST, "/nowhere".to_owned()),
    ] {
        let reply = Reply::from(
            api.request(method, &path, &As::Nobody)
                .body(big.clone())
                .send()
                .await
                .unwrap(),
        )
        .await;
        reply.assert_error(413, "PAYLOAD_TOO_LARGE");
    }
}

#[tokio::test]
async fn routing_answers_404_and_405_before_authentication() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    api.send(Method::GET, "/api/v1/nothing", &As::Nobody, None)
        .await
        .assert_error(404, "NOT_FOUND");
    api.send(Method::GET, &format!("{BASE}/a/b/c"), &As::Nobody, None)
        .await
        .assert_error(404, "NOT_FOUND");
    let reply = api
        .send(Method::PUT, &format!("{BASE}/alice/x"), &As::Nobody, None)
        .await;
    reply.assert_error(405, "METHOD_NOT_ALLOWED");
    assert!(reply.header("allow").is_some());
    api.send(Method::GET, &format!("{BASE}/verify"), &As::Nobody, None)
        .await
        .assert_error(405, "METHOD_NOT_ALLOWED");
    api.send(
        Method::GET,
        &format!("{BASE}/verify/check-code"),
        &As::Nobody,
        None,
    )
    .await
    .assert_error(405, "METHOD_NOT_ALLOWED");
    api.send(Method::DELETE, BASE, &As::Nobody, None)
        .await
        .assert_error(405, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn authentication_failures_follow_section_2() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let path = format!("{BASE}?user_id=alice");
    api.send(Method::GET, &path, &As::Nobody, None)
        .await
        .assert_error(401, "UNAUTHENTICATED");
    let bad = |h: &str, v: &str| {
        api.http
            .get(format!("{}{path}", api.base))
            .header(h, v.to_owned())
    };
    Reply::from(
        bad("authorization", "Bearer nonsense")
            .send()
            .await
            .unwrap(),
    )
    .await
    .assert_error(401, "INVALID_ACCESS_TOKEN");
    Reply::from(bad("authorization", "Basic YTpi").send().await.unwrap())
        .await
        .assert_error(401, "INVALID_ACCESS_TOKEN");
    Reply::from(bad("x-server-key", "wrong").send().await.unwrap())
        .await
        .assert_error(401, "INVALID_SERVER_KEY");
    // An empty server key still decides, even next to a valid token.
    let reply = Reply::from(
        bad("x-server-key", "")
            .bearer_auth(cc_tests::client_token("alice"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply.assert_error(401, "INVALID_SERVER_KEY");
    // 401 comes before 400: a bad query with no credentials is still 401.
    api.send(Method::GET, BASE, &As::Nobody, None)
        .await
        .assert_error(401, "UNAUTHENTICATED");
}

/// An HS256 token signed with the dev secret, carrying exactly `claims`.
fn token_with(claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(cc_tests::JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn a_configured_issuer_and_audience_are_required_claims() {
    let server = LocalServer::start(&[
        ("JWT_ISSUER", "https://issuer.example"),
        ("JWT_AUDIENCE", "my-app"),
    ])
    .await;
    let api = server.api();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let full =
        json!({ "sub": "alice", "exp": exp, "iss": "https://issuer.example", "aud": "my-app" });
    let list = |token: String| {
        let url = format!("{}{BASE}?user_id=me", api.base);
        let request = api.http.get(url).bearer_auth(token);
        async move { Reply::from(request.send().await.unwrap()).await }
    };
    list(token_with(&full)).await.assert_ok(200);
    for (case, drop, null) in [
        ("no iss", Some("iss"), None),
        ("no aud", Some("aud"), None),
        ("iss null", None, Some("iss")),
        ("aud null", None, Some("aud")),
    ] {
        let mut claims = full.clone();
        let map = claims.as_object_mut().unwrap();
        if let Some(name) = drop {
            map.remove(name);
        }
        if let Some(name) = null {
            map.insert(name.into(), Value::Null);
        }
        let reply = list(token_with(&claims)).await;
        assert_eq!(reply.status, 401, "{case}: {}", reply.text);
        reply.assert_error(401, "INVALID_ACCESS_TOKEN");
    }
}

#[tokio::test]
async fn a_retried_create_answers_409_with_the_id_of_the_channel_it_made() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    // The client's first answer was lost: it sends the same create again.
    let first = json!({ "user_id": "me", "type": "email", "value": "a@example.com", "used_for_auth": true });
    let id = api
        .create(&client("alice"), first.clone())
        .await
        .assert_ok(201)["id"]
        .clone();
    let retry = api.create(&client("alice"), first).await;
    retry.assert_error(409, "CONTACT_CHANNEL_ALREADY_EXISTS");
    assert_eq!(retry.body["details"], json!({ "contact_channel_id": id }));
    // A server's retry learns the id the same way.
    let retry = api
        .create(&As::Server, body("alice", "A@example.com"))
        .await;
    retry.assert_error(409, "CONTACT_CHANNEL_ALREADY_EXISTS");
    assert_eq!(retry.body["details"], json!({ "contact_channel_id": id }));
}

#[tokio::test]
async fn me_resolves_for_clients_and_is_refused_for_servers() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let id = api.create_ok("alice", "a@example.com", false).await;
    let reply = api.list(&client("alice"), "user_id=me").await;
    assert_eq!(reply.assert_ok(200)["items"][0]["id"], id.as_str());
    api.list(&As::Server, "user_id=me")
        .await
        .assert_error(400, "CANNOT_GET_OWN_USER_WITHOUT_USER");
    api.read(&As::Server, "me", &id)
        .await
        .assert_error(400, "CANNOT_GET_OWN_USER_WITHOUT_USER");
    api.create(&As::Server, body("me", "x@example.com"))
        .await
        .assert_error(400, "CANNOT_GET_OWN_USER_WITHOUT_USER");
    api.read(&client("alice"), "me", &id).await.assert_ok(200);
}

#[tokio::test]
async fn clients_touch_only_their_own_channels() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let id = api.create_ok("alice", "a@example.com", false).await;
    let mallory = client("mallory");
    let cases = [
        (api.list(&mallory, "user_id=alice").await, "list"),
        (api.read(&mallory, "alice", &id).await, "read"),
        (
            api.create(&mallory, body("alice", "m@example.com")).await,
            "create",
        ),
        (
            api.patch(&mallory, "alice", &id, json!({ "value": "m@example.com" }))
                .await,
            "update",
        ),
        (api.delete(&mallory, "alice", &id).await, "delete"),
        (
            api.send_verification(&mallory, "alice", &id, json!({ "strategy": "email_code" }))
                .await,
            "verify",
        ),
        (
            api.attempt(&mallory, "alice", &id, "123456").await,
            "verify",
        ),
    ];
    for (reply, verb) in cases {
        reply.assert_error(403, "FORBIDDEN");
        let expected = format!("Client can only {verb} contact channels for their own user.");
        assert_eq!(reply.body["error"], expected.as_str());
    }
    // 403 comes before 404: a channel id that does not exist still answers 403.
    api.read(&mallory, "alice", "00000000-0000-4000-8000-000000000000")
        .await
        .assert_error(403, "FORBIDDEN");
    // And nothing changed.
    let reply = api.read(&As::Server, "alice", &id).await;
    assert_eq!(reply.assert_ok(200)["value"], "a@example.com");
}

#[tokio::test]
async fn list_returns_the_users_channels_oldest_first() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let first = api.create_ok("alice", "a1@example.com", false).await;
    let second = api.create_ok("alice", "a2@example.com", false).await;
    api.create_ok("bob", "b@example.com", false).await;
    let reply = api.list(&As::Server, "user_id=alice").await;
    let b = reply.assert_ok(200);
    assert_eq!(b["is_paginated"], false);
    let ids: Vec<&str> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![first.as_str(), second.as_str()]);
    let reply = api
        .list(
            &As::Server,
            &format!("user_id=alice&contact_channel_id={second}&unknown=1"),
        )
        .await;
    assert_eq!(reply.assert_ok(200)["items"].as_array().unwrap().len(), 1);
    let reply = api
        .list(&As::Server, "user_id=alice&contact_channel_id=not-a-uuid")
        .await;
    assert_eq!(reply.assert_ok(200)["items"], json!([]));
    let reply = api
        .list(
            &As::Server,
            &format!("user_id=bob&contact_channel_id={first}"),
        )
        .await;
    assert_eq!(reply.assert_ok(200)["items"], json!([]));
    api.list(&As::Server, "")
        .await
        .assert_error(400, "SCHEMA_ERROR");
    api.list(&As::Server, "user_id=a%20b")
        .await
        .assert_error(400, "SCHEMA_ERROR");
}

#[tokio::test]
async fn user_ids_travel_percent_encoded() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let id = api.create_ok("org|alice@x", "a@example.com", false).await;
    api.read(&As::Server, "org%7Calice@x", &id)
        .await
        .assert_ok(200);
    let reply = api.list(&As::Server, "user_id=org%7Calice%40x").await;
    assert_eq!(reply.assert_ok(200)["items"].as_array().unwrap().len(), 1);
    api.read(&As::Server, "bad%20user", &id)
        .await
        .assert_error(400, "SCHEMA_ERROR");
    api.read(&As::Server, "verify", &id)
        .await
        .assert_error(400, "SCHEMA_ERROR");
}

#[tokio::test]
async fn read_answers_404_for_unknown_or_malformed_ids() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let id = api.create_ok("alice", "a@example.com", false).await;
    api.read(&As::Server, "alice", &id).await.assert_ok(200);
    api.read(&As::Server, "bob", &id)
        .await
        .assert_error(404, "CONTACT_CHANNEL_NOT_FOUND");
    api.read(&As::Server, "alice", "00000000-0000-4000-8000-000000000000")
        .await
        .assert_error(404, "CONTACT_CHANNEL_NOT_FOUND");
    api.read(&As::Server, "alice", "nope")
        .await
        .assert_error(404, "CONTACT_CHANNEL_NOT_FOUND");
}

#[tokio::test]
async fn patch_updates_fields_and_a_new_value_is_unverified() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let mut b = body("alice", "a@example.com");
    b["is_verified"] = json!(true);
    let id = api.create(&As::Server, b).await.assert_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // {} changes nothing.
    let before = api.read(&As::Server, "alice", &id).await.body;
    let reply = api.patch(&client("alice"), "me", &id, json!({})).await;
    assert_eq!(reply.assert_ok(200), &before);
    // Re-sending the same value changes nothing (differs from Stack Auth).
    let reply = api
        .patch(
            &client("alice"),
            "alice",
            &id,
            json!({ "value": "A@example.com" }),
        )
        .await;
    assert_eq!(reply.assert_ok(200)["is_verified"], true);
    let reply = api
        .patch(
            &client("alice"),
            "alice",
            &id,
            json!({ "value": "new@example.com", "used_for_auth": true }),
        )
        .await;
    let c = reply.assert_ok(200);
    assert_eq!(c["value"], "new@example.com");
    assert_eq!(c["is_verified"], false);
    assert_eq!(c["used_for_auth"], true);
    assert_eq!(c["verification"]["status"], "unverified");
    // A server may change the value and keep it verified in the same request.
    let reply = api
        .patch(
            &As::Server,
            "alice",
            &id,
            json!({ "value": "n2@example.com", "is_verified": true }),
        )
        .await;
    assert_eq!(reply.assert_ok(200)["is_verified"], true);
    // And un-verify.
    let reply = api
        .patch(&As::Server, "alice", &id, json!({ "is_verified": false }))
        .await;
    assert_eq!(reply.assert_ok(200)["is_verified"], false);
    api.patch(&As::Server, "alice", &id, json!({ "type": "sms" }))
        .await
        .assert_error(400, "SCHEMA_ERROR");
    api.patch(&As::Server, "alice", &id, json!({ "value": 3 }))
        .await
        .assert_error(400, "SCHEMA_ERROR");
    api.patch(&As::Server, "alice", &id, json!({ "id": "x" }))
        .await
        .assert_error(400, "SCHEMA_ERROR");
}

#[tokio::test]
async fn patch_answers_404_and_409_per_the_contract() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let a1 = api.create_ok("alice", "a1@example.com", false).await;
    api.create_ok("alice", "a2@example.com", false).await;
    api.create_ok("bob", "taken@example.com", true).await;
    api.patch(
        &As::Server,
        "alice",
        "00000000-0000-4000-8000-000000000000",
        json!({}),
    )
    .await
    .assert_error(404, "CONTACT_CHANNEL_NOT_FOUND");
    api.patch(
        &As::Server,
        "alice",
        &a1,
        json!({ "value": "a2@example.com" }),
    )
    .await
    .assert_error(409, "CONTACT_CHANNEL_ALREADY_EXISTS");
    api.patch(
        &As::Server,
        "alice",
        &a1,
        json!({ "value": "taken@example.com", "used_for_auth": true }),
    )
    .await
    .assert_error(409, "CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE");
    // Setting used_for_auth on a channel whose value someone else uses for auth.
    let shared = api.create_ok("alice", "taken@example.com", false).await;
    api.patch(
        &As::Server,
        "alice",
        &shared,
        json!({ "used_for_auth": true }),
    )
    .await
    .assert_error(409, "CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE");
    // Changing the value of a channel already used for auth onto a taken value.
    api.create_ok("carol", "carol@example.com", true).await;
    let auth = api.create_ok("alice", "mine@example.com", true).await;
    api.patch(
        &As::Server,
        "alice",
        &auth,
        json!({ "value": "carol@example.com" }),
    )
    .await
    .assert_error(409, "CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE");
    // Nothing changed by the refusals.
    let reply = api.read(&As::Server, "alice", &auth).await;
    assert_eq!(reply.assert_ok(200)["value"], "mine@example.com");
    let reply = api.read(&As::Server, "alice", &a1).await;
    assert_eq!(reply.assert_ok(200)["value"], "a1@example.com");
}

#[tokio::test]
async fn making_a_channel_primary_demotes_the_previous_one() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let a = api.create_ok("alice", "a@example.com", false).await;
    let mut b = body("alice", "b@example.com");
    b["is_primary"] = json!(true);
    let b = api.create(&As::Server, b).await.assert_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.patch(&As::Server, "alice", &a, json!({ "is_primary": true }))
        .await
        .assert_ok(200);
    assert_eq!(
        api.read(&As::Server, "alice", &b).await.body["is_primary"],
        false
    );
    assert_eq!(
        api.read(&As::Server, "alice", &a).await.body["is_primary"],
        true
    );
    // Un-priming leaves the user with none; nothing is promoted.
    api.patch(&As::Server, "alice", &a, json!({ "is_primary": false }))
        .await
        .assert_ok(200);
    let items = api.list(&As::Server, "user_id=alice").await.body["items"].clone();
    assert!(
        items
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["is_primary"] == false)
    );
    // Deleting the primary leaves none either.
    api.patch(&As::Server, "alice", &b, json!({ "is_primary": true }))
        .await
        .assert_ok(200);
    api.delete(&As::Server, "alice", &b).await.assert_ok(200);
    let items = api.list(&As::Server, "user_id=alice").await.body["items"].clone();
    assert_eq!(items.as_array().unwrap().len(), 1);
    assert_eq!(items[0]["is_primary"], false);
}

#[tokio::test]
async fn delete_removes_the_channel_and_its_claims() {
    let server = LocalServer::start(&[("MAX_CHANNELS_PER_USER", "1")]).await;
    let api = server.api();
    let id = api.create_ok("alice", "a@example.com", true).await;
    let reply = api.delete(&client("alice"), "alice", &id).await;
    assert_eq!(reply.assert_ok(200), &json!({ "success": true }));
    api.delete(&As::Server, "alice", &id)
        .await
        .assert_error(404, "CONTACT_CHANNEL_NOT_FOUND");
    api.read(&As::Server, "alice", &id)
        .await
        .assert_error(404, "CONTACT_CHANNEL_NOT_FOUND");
    api.delete(&As::Server, "alice", "garbage")
        .await
        .assert_error(404, "CONTACT_CHANNEL_NOT_FOUND");
    // The auth claim and the slot are free again.
    api.create_ok("bob", "a@example.com", true).await;
    api.create_ok("alice", "other@example.com", false).await;
}

#[tokio::test]
async fn fifty_users_racing_for_one_auth_value_get_exactly_one_201() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                let mut b = body(&format!("user{i}"), "race@example.com");
                b["used_for_auth"] = json!(true);
                api.create(&As::Server, b).await
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        let reply = t.await.unwrap();
        match reply.status {
            201 => created += 1,
            _ => reply.assert_error(409, "CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE"),
        }
    }
    assert_eq!(created, 1);
}

#[tokio::test]
async fn twenty_racing_make_primary_calls_leave_exactly_one_primary() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            api.create_ok("alice", &format!("a{i}@example.com"), false)
                .await,
        );
    }
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let (api, id) = (api.clone(), id.clone());
            tokio::spawn(async move {
                api.patch(&As::Server, "alice", &id, json!({ "is_primary": true }))
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().assert_ok(200);
    }
    let items = api.list(&As::Server, "user_id=alice").await.body["items"].clone();
    let primaries = items
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["is_primary"] == true)
        .count();
    assert_eq!(primaries, 1);
}

#[tokio::test]
async fn one_user_racing_ten_creates_of_one_value_stores_one() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move {
                api.create(&client("alice"), body("alice", "same@example.com"))
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        let reply = t.await.unwrap();
        match reply.status {
            201 => created += 1,
            _ => reply.assert_error(409, "CONTACT_CHANNEL_ALREADY_EXISTS"),
        }
    }
    assert_eq!(created, 1);
    let items = api.list(&As::Server, "user_id=alice").await.body["items"].clone();
    assert_eq!(items.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn data_written_before_a_restart_is_there_after_it() {
    let server = LocalServer::start(&[]).await;
    let api = server.api();
    let id = api.create_ok("alice", "a@example.com", true).await;
    api.patch(&As::Server, "alice", &id, json!({ "is_primary": true }))
        .await
        .assert_ok(200);
    let before = api.read(&As::Server, "alice", &id).await.body;
    // Killed, not shut down cleanly: the committed data must survive.
    let server = server.restart().await;
    let api = server.api();
    assert_eq!(
        api.read(&As::Server, "alice", &id).await.assert_ok(200),
        &before
    );
    // Claims survived too.
    let mut b = body("bob", "a@example.com");
    b["used_for_auth"] = json!(true);
    api.create(&As::Server, b)
        .await
        .assert_error(409, "CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE");
}
