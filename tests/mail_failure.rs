//! The 502 path with a mail service that fails on demand (docs/api.md §5.6): the channel's
//! verification is exactly as before, the refused mail's code never works, and neither the
//! cooldown nor the daily cap is consumed.

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use cc_local::embedded::EmbeddedStore;
use cc_tests::six_digits;
use contact_channels::Service;
use contact_channels::http::Endpoint;
use contact_channels::http::router;
use contact_channels::mail::{Mail, MailError, Mailer};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Accepts mail until told to fail; keeps every mail, accepted or refused.
#[derive(Default)]
struct FlakyMailer {
    failing: AtomicBool,
    accepted: Mutex<Vec<Mail>>,
    refused: Mutex<Vec<Mail>>,
}

#[async_trait]
impl Mailer for FlakyMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        if self.failing.load(Ordering::SeqCst) {
            self.refused.lock().await.push(mail.clone());
            Err(MailError("sending paused".into()))
        } else {
            self.accepted.lock().await.push(mail.clone());
            Ok(())
        }
    }
}

struct Harness {
    app: axum::Router,
    mailer: Arc<FlakyMailer>,
    _dir: tempfile::TempDir,
}

fn harness(vars: &'static [(&'static str, &'static str)]) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config = cc_tests::local_config(vars);
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let mailer = Arc::new(FlakyMailer::default());
    let app = router(
        Arc::new(Service::new(config, store).with_mailer(mailer.clone())),
        Endpoint::ALL,
    );
    Harness {
        app,
        mailer,
        _dir: dir,
    }
}

impl Harness {
    async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("x-server-key", cc_tests::SERVER_KEY)
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let (status, _, body) = cc_tests::router::call(&self.app, request).await;
        (status, body)
    }

    async fn create(&self) -> String {
        let body = json!({ "user_id": "alice", "type": "email", "value": "alice@example.com", "used_for_auth": false });
        let (status, c) = self.call("POST", "/api/v1/contact-channels", body).await;
        assert_eq!(status, 201);
        c["id"].as_str().unwrap().to_owned()
    }

    async fn send_code(&self, id: &str) -> (u16, Value) {
        let path = format!("/api/v1/contact-channels/alice/{id}/send-verification-code");
        self.call("POST", &path, json!({ "strategy": "email_code" }))
            .await
    }

    async fn attempt(&self, id: &str, code: &str) -> (u16, Value) {
        let path = format!("/api/v1/contact-channels/alice/{id}/attempt-verification");
        self.call("POST", &path, json!({ "code": code })).await
    }

    async fn read(&self, id: &str) -> Value {
        self.call(
            "GET",
            &format!("/api/v1/contact-channels/alice/{id}"),
            Value::Null,
        )
        .await
        .1
    }
}

fn code_of(mail: &Mail) -> String {
    six_digits(&mail.text).unwrap()
}

#[tokio::test]
async fn a_refused_resend_leaves_the_previous_code_valid_and_its_own_code_dead() {
    let h = harness(&[("SEND_COOLDOWN_SECONDS", "0")]);
    let id = h.create().await;
    assert_eq!(h.send_code(&id).await.0, 200);
    let before = h.read(&id).await;
    let first = code_of(&h.mailer.accepted.lock().await[0]);

    h.mailer.failing.store(true, Ordering::SeqCst);
    let (status, body) = h.send_code(&id).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("EMAIL_DELIVERY_FAILED"))
    );
    assert_eq!(
        h.read(&id).await,
        before,
        "verification is exactly as before the request"
    );
    let never_received = code_of(&h.mailer.refused.lock().await[0]);
    if never_received != first {
        let (status, body) = h.attempt(&id, &never_received).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("VERIFICATION_CODE_INCORRECT"))
        );
    }
    let (status, body) = h.attempt(&id, &first).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_refused_send_consumes_neither_the_cooldown_nor_the_daily_cap() {
    let h = harness(&[("SEND_COOLDOWN_SECONDS", "30"), ("MAX_SENDS_PER_DAY", "1")]);
    let id = h.create().await;
    h.mailer.failing.store(true, Ordering::SeqCst);
    assert_eq!(h.send_code(&id).await.0, 502);
    assert_eq!(h.read(&id).await["verification"]["status"], "unverified");
    h.mailer.failing.store(false, Ordering::SeqCst);
    let (status, body) = h.send_code(&id).await;
    assert_eq!(status, 200, "{body}");
    let code = code_of(&h.mailer.accepted.lock().await[0]);
    assert_eq!(h.attempt(&id, &code).await.0, 200);
}
