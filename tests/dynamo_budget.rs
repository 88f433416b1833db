//! Round trips per API call, the main cost of latency on Lambda: every DynamoDB request the
//! handlers make goes through an SDK interceptor that counts it, against moto.
//! Budget: list 1, read 1, create 1 (≤ 3 when it takes the primary from another channel: the
//! first try assumes there is none), update ≤ 2, delete ≤ 2, send-verification ≤ 2 (+1 SES),
//! attempt ≤ 2, verify ≤ 2.

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use cc_aws::dynamo::DynamoStore;
use cc_ses::SesMailer;
use cc_tests::moto::moto;
use cc_tests::{link_token, six_digits};
use contact_channels::Service;
use contact_channels::http::Endpoint;
use contact_channels::http::router;
use serde_json::{Value, json};

/// Counts every request the SDK puts on the wire (retries included).
#[derive(Debug, Clone, Default)]
struct Counter(Arc<AtomicUsize>);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "RoundTripCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Harness {
    app: axum::Router,
    dynamo: Counter,
    ses_sender: String,
}

async fn harness() -> Harness {
    let moto = moto();
    let table = moto.new_table().await;
    let sender = moto.new_sender().await;
    let sdk = moto.sdk_config().await;
    let dynamo = Counter::default();
    let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .interceptor(dynamo.clone())
        .build();
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(conf),
        table,
    ));
    let mailer = Arc::new(SesMailer::new(
        aws_sdk_sesv2::Client::new(&sdk),
        sender.clone(),
        None,
    ));
    let vars = [
        ("SEND_COOLDOWN_SECONDS", "0"),
        ("ALLOWED_CALLBACK_URLS", "https://app.example.com"),
    ];
    let config = cc_tests::local_config(&vars);
    Harness {
        app: router(
            Arc::new(Service::new(config, store).with_mailer(mailer)),
            Endpoint::ALL,
        ),
        dynamo,
        ses_sender: sender,
    }
}

impl Harness {
    /// Calls the API and returns status, body and the DynamoDB round trips it took.
    async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value, usize) {
        let before = self.dynamo.0.load(Ordering::SeqCst);
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("x-server-key", cc_tests::SERVER_KEY)
            .body(axum::body::Body::from(if body.is_null() {
                String::new()
            } else {
                body.to_string()
            }))
            .unwrap();
        let (status, _, body) = cc_tests::router::call(&self.app, request).await;
        (status, body, self.dynamo.0.load(Ordering::SeqCst) - before)
    }

    async fn last_mail_text(&self) -> String {
        moto().sent_mail(&self.ses_sender).await[0]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

#[track_caller]
fn within(what: &str, got: (u16, Value, usize), status: u16, budget: usize) -> Value {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert!(
        got.2 <= budget,
        "{what} took {} DynamoDB round trips; the budget is {budget}",
        got.2
    );
    assert!(got.2 >= 1, "{what} made no DynamoDB request at all");
    got.1
}

#[tokio::test]
async fn every_operation_stays_within_its_round_trip_budget() {
    let h = harness().await;
    let base = "/api/v1/contact-channels";
    let body = json!({ "user_id": "alice", "type": "email", "value": "alice@example.com", "used_for_auth": true, "is_primary": true });
    let c = within("create", h.call("POST", base, body).await, 201, 1);
    let id = c["id"].as_str().unwrap().to_owned();
    let one = format!("{base}/alice/{id}");

    within(
        "list",
        h.call("GET", &format!("{base}?user_id=alice"), Value::Null)
            .await,
        200,
        1,
    );
    within("read", h.call("GET", &one, Value::Null).await, 200, 1);
    within(
        "update",
        h.call(
            "PATCH",
            &one,
            json!({ "value": "a2@example.com", "is_primary": false }),
        )
        .await,
        200,
        2,
    );

    let send = format!("{one}/send-verification-code");
    within(
        "send code",
        h.call("POST", &send, json!({ "strategy": "email_code" }))
            .await,
        200,
        2,
    );
    let code = six_digits(&h.last_mail_text().await).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let attempt = format!("{one}/attempt-verification");
    within(
        "wrong attempt",
        h.call("POST", &attempt, json!({ "code": wrong })).await,
        400,
        2,
    );
    within(
        "right attempt",
        h.call("POST", &attempt, json!({ "code": code })).await,
        200,
        2,
    );

    within(
        "un-verify",
        h.call("PATCH", &one, json!({ "is_verified": false })).await,
        200,
        2,
    );
    let link = json!({ "strategy": "email_link", "callback_url": "https://app.example.com/v" });
    within("send link", h.call("POST", &send, link).await, 200, 2);
    let token = link_token(&h.last_mail_text().await).unwrap();
    within(
        "check link",
        h.call(
            "POST",
            &format!("{base}/verify/check-code"),
            json!({ "code": token }),
        )
        .await,
        200,
        2,
    );
    within(
        "verify link",
        h.call("POST", &format!("{base}/verify"), json!({ "code": token }))
            .await,
        200,
        2,
    );
    // `one` is not primary since the update above: making it primary again reads the user's
    // channels in place of the one channel; then a create takes the primary from it.
    let back = within(
        "update making it primary",
        h.call("PATCH", &one, json!({ "is_primary": true })).await,
        200,
        2,
    );
    assert_eq!(back["is_primary"], true);
    let second = json!({ "user_id": "alice", "type": "email", "value": "a3@example.com", "used_for_auth": false, "is_primary": true });
    let taken = within(
        "create taking the primary",
        h.call("POST", base, second).await,
        201,
        3,
    );
    assert_eq!(taken["is_primary"], true);
    within("delete", h.call("DELETE", &one, Value::Null).await, 200, 2);
}

#[tokio::test]
async fn the_ses_mailer_sends_through_sesv2_and_reports_a_refused_sender() {
    let h = harness().await;
    let base = "/api/v1/contact-channels";
    let body = json!({ "user_id": "bob", "type": "email", "value": "bob@example.com", "used_for_auth": false });
    let id = h.call("POST", base, body).await.1["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let send = format!("{base}/bob/{id}/send-verification-code");
    assert_eq!(
        h.call("POST", &send, json!({ "strategy": "email_code" }))
            .await
            .0,
        200
    );
    let mails = moto().sent_mail(&h.ses_sender).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["to"], "bob@example.com");
    assert!(
        mails[0]["subject"]
            .as_str()
            .unwrap()
            .contains("verification code")
    );
    let code = six_digits(mails[0]["text"].as_str().unwrap()).unwrap();

    // The same app with a sender SES never verified: every send is refused.
    let sdk = moto().sdk_config().await;
    let refusing = SesMailer::new(
        aws_sdk_sesv2::Client::new(&sdk),
        "nobody@unverified.example",
        None,
    );
    let mail = contact_channels::mail::compose(
        "x",
        &contact_channels::domain::EmailAddress::parse("bob@example.com").unwrap(),
        &contact_channels::mail::MailKind::Code {
            code: "123456",
            page: None,
        },
        60,
    );
    use contact_channels::mail::Mailer;
    let err = refusing.send(&mail).await.unwrap_err();
    assert!(err.0.contains("MessageRejected"), "{err}");
    assert!(
        !err.0.contains("123456"),
        "a mail error must not carry the code"
    );
    // And the first code still works through the first app.
    let attempt = format!("{base}/bob/{id}/attempt-verification");
    assert_eq!(
        h.call("POST", &attempt, json!({ "code": code })).await.0,
        200
    );
}
