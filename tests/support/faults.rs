//! A fault-injecting HTTP proxy between an AWS SDK client and moto. The SDK's endpoint is the
//! proxy; every request is forwarded to moto unless a fault is armed for it. Faults act on the
//! k-th *operation* the client sends (counted by the SDK's `amz-sdk-invocation-id`, which all
//! retries of one operation share), on its first attempt or on every attempt:
//!
//! - before moto sees the request: a throttling error, a 500, or a dropped connection;
//! - after moto applied it: the answer is dropped (connection closed) or never sent (the
//!   client's attempt timeout fires). This is the dangerous case: committed, yet the caller
//!   sees an error, and the SDK retries the request.
//!
//! moto 5.2.5 ignores `ClientRequestToken` on TransactWriteItems; DynamoDB returns the first
//! call's success to a retry that carries the same token (the SDK keeps the token across its
//! retries). With [`FaultProxy::emulate_idempotency`] the proxy answers such a retry itself, as
//! DynamoDB would; without it, the retry runs again on moto (the worst case).

// Test support: a panic here is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// What to do to the armed operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Answer a throttling error without forwarding (DynamoDB: 400 `ThrottlingException`;
    /// SES: 429 `TooManyRequestsException`).
    Throttle,
    /// Answer 500 without forwarding.
    ServerError,
    /// Answer a non-retryable refusal without forwarding (SES: 400 `MessageRejected`).
    Reject,
    /// Close the connection without forwarding: the request never reached the service.
    DropBefore,
    /// Forward (the service applies it), then close the connection instead of answering.
    DropAfter,
    /// Forward (the service applies it), then never answer: the client's attempt timeout fires.
    TimeoutAfter,
}

impl Fault {
    /// Whether the service has seen (and applied) the request when the fault strikes.
    pub fn after_apply(self) -> bool {
        matches!(self, Fault::DropAfter | Fault::TimeoutAfter)
    }
}

/// Which attempts of the armed operation the fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Times {
    /// The first attempt only: the SDK's retry goes through.
    Once,
    /// Every attempt: the SDK gives up and the caller sees the error.
    Always,
}

/// The dialect of the service behind the proxy, for the error bodies it fakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    DynamoDb,
    SesV2,
}

/// A recorded answer: status, headers, body.
type Answer = (u16, Vec<(String, String)>, Bytes);

#[derive(Default)]
struct State {
    /// Invocation ids in the order the operations first arrived.
    operations: Vec<String>,
    /// (k, fault, times): the k-th operation (1-based) from now on gets the fault.
    armed: Option<(usize, Fault, Times)>,
    /// How many attempts the fault hit.
    fired: usize,
    /// Requests seen, attempts included.
    requests: usize,
    /// TransactWriteItems answers by `ClientRequestToken` (idempotency emulation).
    tokens: HashMap<String, Answer>,
    emulate_idempotency: bool,
    /// Retries of a TransactWriteItems answered from the token cache.
    replayed: usize,
}

/// The proxy; it runs on the test's runtime until dropped with it.
#[derive(Clone)]
pub struct FaultProxy {
    /// The endpoint to give the SDK.
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (moto's endpoint).
    pub async fn start(upstream: &str, dialect: Dialect) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(4)
            .build()
            .unwrap();
        let upstream = upstream.to_owned();
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, http, upstream) = (shared.clone(), http.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        handle(req, state.clone(), http.clone(), upstream.clone(), dialect)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy { endpoint, state }
    }

    /// Answers a retried TransactWriteItems whose token already succeeded with that success,
    /// as DynamoDB does (moto does not).
    pub fn emulate_idempotency(&self, on: bool) {
        self.state.lock().unwrap().emulate_idempotency = on;
    }

    /// Arms `fault` for the k-th operation (1-based) counted from now.
    pub fn arm(&self, k: usize, fault: Fault, times: Times) {
        let mut s = self.state.lock().unwrap();
        s.operations.clear();
        s.fired = 0;
        s.armed = Some((k, fault, times));
    }

    /// Disarms; returns how many attempts the fault hit.
    pub fn disarm(&self) -> usize {
        let mut s = self.state.lock().unwrap();
        s.armed = None;
        std::mem::take(&mut s.fired)
    }

    /// Starts counting operations from zero (no fault).
    pub fn count(&self) {
        let mut s = self.state.lock().unwrap();
        s.operations.clear();
        s.armed = None;
    }

    /// Operations seen since `count` or `arm`.
    pub fn operations(&self) -> usize {
        self.state.lock().unwrap().operations.len()
    }

    /// Requests (attempts included) seen since the proxy started.
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    /// Retries answered from the idempotency-token cache since the proxy started.
    pub fn replayed(&self) -> usize {
        self.state.lock().unwrap().replayed
    }
}

type Reply = Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>>;

fn response(status: u16, headers: &[(String, String)], body: Bytes) -> Reply {
    let mut builder = Response::builder().status(status);
    for (k, v) in headers {
        builder = builder.header(k, v);
    }
    Ok(builder.body(Full::new(body))?)
}

/// The error a fault answers with, in the service's dialect.
fn fake_error(dialect: Dialect, fault: Fault) -> Reply {
    let (status, kind) = match (dialect, fault) {
        (Dialect::DynamoDb, Fault::Throttle) => (400, "ThrottlingException"),
        (Dialect::DynamoDb, _) => (500, "InternalServerError"),
        (Dialect::SesV2, Fault::Throttle) => (429, "TooManyRequestsException"),
        (Dialect::SesV2, Fault::Reject) => (400, "MessageRejected"),
        (Dialect::SesV2, _) => (500, "InternalFailure"),
    };
    let (headers, body) = match dialect {
        Dialect::DynamoDb => (
            vec![(
                "content-type".to_owned(),
                "application/x-amz-json-1.0".to_owned(),
            )],
            format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected fault"}}"#
            ),
        ),
        Dialect::SesV2 => (
            vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("x-amzn-errortype".to_owned(), kind.to_owned()),
            ],
            r#"{"message":"injected fault"}"#.to_owned(),
        ),
    };
    response(status, &headers, Bytes::from(body))
}

fn token_of(target: &str, body: &[u8]) -> Option<String> {
    if !target.ends_with(".TransactWriteItems") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["ClientRequestToken"].as_str().map(str::to_owned)
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    http: reqwest::Client,
    upstream: String,
    dialect: Dialect,
) -> Reply {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let invocation = header("amz-sdk-invocation-id");
    let first_attempt =
        header("amz-sdk-request").starts_with("attempt=1;") || header("amz-sdk-request").is_empty();
    let target = header("x-amz-target");
    let token = token_of(&target, &body);
    let (fault, replay) = {
        let mut s = state.lock().unwrap();
        s.requests += 1;
        let k = match s.operations.iter().position(|i| *i == invocation) {
            Some(i) => i + 1,
            None => {
                s.operations.push(invocation.clone());
                s.operations.len()
            }
        };
        let fault = match s.armed {
            Some((at, fault, times)) if at == k && (times == Times::Always || first_attempt) => {
                s.fired += 1;
                Some(fault)
            }
            _ => None,
        };
        let replay = if fault.is_none_or(Fault::after_apply) && s.emulate_idempotency {
            token.as_ref().and_then(|t| s.tokens.get(t)).cloned()
        } else {
            None
        };
        if replay.is_some() {
            s.replayed += 1;
        }
        (fault, replay)
    };
    if let Some((status, headers, body)) = replay {
        return after_apply(fault, status, &headers, body).await;
    }
    match fault {
        Some(Fault::DropBefore) => return Err("injected: dropped before forwarding".into()),
        Some(f) if !f.after_apply() => return fake_error(dialect, f),
        _ => {}
    }
    let uri = format!(
        "{upstream}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut forward = http.request(parts.method.clone(), uri).body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            forward = forward.header(name, value);
        }
    }
    let answer = forward.send().await?;
    let status = answer.status().as_u16();
    let headers: Vec<(String, String)> = answer
        .headers()
        .iter()
        .filter(|(k, _)| *k != "content-length" && *k != "transfer-encoding")
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = answer.bytes().await?;
    if let (200, Some(token)) = (status, token) {
        let mut s = state.lock().unwrap();
        s.tokens
            .entry(token)
            .or_insert_with(|| (status, headers.clone(), body.clone()));
    }
    after_apply(fault, status, &headers, body).await
}

/// The answer of a request the service applied, unless a fault takes it away.
async fn after_apply(
    fault: Option<Fault>,
    status: u16,
    headers: &[(String, String)],
    body: Bytes,
) -> Reply {
    match fault {
        Some(Fault::DropAfter) => Err("injected: answer dropped".into()),
        Some(Fault::TimeoutAfter) => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Err("injected: answer never sent".into())
        }
        _ => response(status, headers, body),
    }
}

/// The SDK retry policy of the suites: production's (standard mode, 3 attempts in all,
/// `aws/src/sdk.rs`) with a short first backoff, so that a throttled case takes milliseconds.
pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(5))
}

/// Production's timeouts scaled down: an answer that never comes costs one second per attempt.
pub fn timeout_config() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(1))
        .operation_timeout(Duration::from_secs(8))
        .build()
}

/// Every (fault, times) the suites inject, in a fixed order.
pub const KINDS: &[(Fault, Times)] = &[
    (Fault::Throttle, Times::Once),
    (Fault::Throttle, Times::Always),
    (Fault::ServerError, Times::Once),
    (Fault::ServerError, Times::Always),
    (Fault::DropBefore, Times::Always),
    (Fault::DropAfter, Times::Once),
    (Fault::DropAfter, Times::Always),
    (Fault::TimeoutAfter, Times::Once),
];
