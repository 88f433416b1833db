//! An in-test implementation of the AWS Lambda Runtime API (2018-06-01), so the function
//! binaries run exactly as on Lambda: they poll `invocation/next`, get an API Gateway v2 event
//! with the real headers, and post a response, an invocation error or an init error.

use std::collections::HashMap;
use std::convert::Infallible;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// What a function answered for one invocation.
#[derive(Debug)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

#[derive(Default)]
struct Shared {
    waiting: HashMap<String, oneshot::Sender<Outcome>>,
    init_error: Option<(String, Value)>,
    next_polls: usize,
}

/// One Runtime API endpoint, serving one function process.
pub struct RuntimeApi {
    pub address: String,
    queue: mpsc::UnboundedSender<(String, Value)>,
    shared: Arc<Mutex<Shared>>,
}

fn reply(status: u16, body: &str) -> http::Response<Full<Bytes>> {
    let mut r = http::Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (queue, rx) = mpsc::unbounded_channel::<(String, Value)>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (rx, state) = (rx.clone(), state.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<Incoming>| {
                        let (rx, state) = (rx.clone(), state.clone());
                        async move { Ok::<_, Infallible>(handle(req, rx, state).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RuntimeApi {
            address,
            queue,
            shared,
        }
    }

    /// Hands `event` to the function and waits for its answer.
    pub async fn invoke(&self, event: Value) -> Outcome {
        let id = format!("req-{}", uuid::Uuid::new_v4());
        let (tx, rx) = oneshot::channel();
        self.shared.lock().unwrap().waiting.insert(id.clone(), tx);
        self.queue.send((id, event)).unwrap();
        tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .expect("the function answered within 20 s")
            .expect("the function answered")
    }

    /// The init error the function reported, if any: (error type header, body).
    pub fn init_error(&self) -> Option<(String, Value)> {
        self.shared.lock().unwrap().init_error.clone()
    }

    pub fn next_polls(&self) -> usize {
        self.shared.lock().unwrap().next_polls
    }
}

async fn handle(
    req: http::Request<Incoming>,
    rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>>,
    state: Arc<Mutex<Shared>>,
) -> http::Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let error_type = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["2018-06-01", "runtime", "invocation", "next"]) => {
            state.lock().unwrap().next_polls += 1;
            let Some((id, event)) = rx.lock().await.recv().await else {
                return reply(500, "shutting down");
            };
            let deadline = contact_channels::domain::now_millis() + 15_000;
            let mut r = reply(200, &event.to_string());
            let h = r.headers_mut();
            h.insert("content-type", "application/json".parse().unwrap());
            h.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
            h.insert(
                "lambda-runtime-deadline-ms",
                deadline.to_string().parse().unwrap(),
            );
            h.insert(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:contact-channels-test"
                    .parse()
                    .unwrap(),
            );
            h.insert(
                "lambda-runtime-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
                    .parse()
                    .unwrap(),
            );
            r
        }
        (
            "POST",
            [
                "2018-06-01",
                "runtime",
                "invocation",
                id,
                kind @ ("response" | "error"),
            ],
        ) => {
            let waiting = state.lock().unwrap().waiting.remove(*id);
            let Some(tx) = waiting else {
                return reply(400, r#"{"errorMessage":"unknown request id"}"#);
            };
            let outcome = if *kind == "response" {
                Outcome::Response(json)
            } else {
                Outcome::Error(json)
            };
            let _ = tx.send(outcome);
            reply(202, r#"{"status":"OK"}"#)
        }
        ("POST", ["2018-06-01", "runtime", "init", "error"]) => {
            state.lock().unwrap().init_error = Some((error_type, json));
            reply(202, r#"{"status":"OK"}"#)
        }
        _ => reply(404, r#"{"errorMessage":"not a Runtime API route"}"#),
    }
}

/// A function binary running against its own Runtime API.
pub struct Function {
    pub api: RuntimeApi,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

/// The command that runs `binary` (of this build's target directory) as Lambda would: the
/// platform's variables, `env`, and nothing else from this process.
pub fn lambda_command(binary: &str, runtime_api: &str, env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(crate::bin(binary));
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", binary)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{binary}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/22/[$LATEST]test")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl Function {
    /// Starts `target/<profile>/<binary>` with `env` (and nothing else from this process).
    pub async fn start(binary: &str, env: &[(String, String)]) -> Function {
        let api = RuntimeApi::start().await;
        let mut cmd = lambda_command(binary, &api.address, env);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start the function binary");
        let stderr = Arc::new(Mutex::new(String::new()));
        crate::capture_stream(child.stderr.take().expect("stderr"), stderr.clone());
        crate::capture_stream(child.stdout.take().expect("stdout"), stderr.clone());
        Function { api, child, stderr }
    }

    /// Invokes with an API Gateway v2 event; returns status, headers and JSON body.
    pub async fn call(&self, event: Value) -> (u16, HashMap<String, String>, Value) {
        match self.api.invoke(event).await {
            Outcome::Response(r) => {
                let status = r["statusCode"].as_u64().expect("statusCode") as u16;
                let headers = r["headers"]
                    .as_object()
                    .map(|h| {
                        h.iter()
                            .map(|(k, v)| {
                                (k.to_lowercase(), v.as_str().unwrap_or_default().to_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(r["isBase64Encoded"], false, "JSON bodies travel as text");
                let body = serde_json::from_str(r["body"].as_str().unwrap_or("null"))
                    .expect("a JSON body");
                (status, headers, body)
            }
            Outcome::Error(e) => panic!(
                "the function reported an invocation error: {e}; log: {}",
                self.log()
            ),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote (its log). A function writes a request's lines before it
    /// posts the response, but the thread that reads its pipe may not have run yet when the
    /// test gets the response (seen on a loaded CI machine): this waits until the log has been
    /// quiet for 100 ms (3 s at most).
    pub fn log(&self) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let mut seen = self.stderr.lock().unwrap().len();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.stderr.lock().unwrap().len();
            if now == seen || std::time::Instant::now() > deadline {
                return self.stderr.lock().unwrap().clone();
            }
            seen = now;
        }
    }

    /// Waits for the process to exit, up to `limit`.
    pub async fn exit_status(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An API Gateway HTTP API (payload v2) event, shaped like the samples in `events/`.
pub fn api_gateway_event(
    method: &str,
    path: &str,
    query: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Value {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/list.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap();
    event["rawPath"] = path.into();
    event["rawQueryString"] = query.into();
    event["requestContext"]["http"]["method"] = method.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["requestId"] = uuid::Uuid::new_v4().to_string().into();
    if let Some(map) = event.as_object_mut() {
        map.remove("queryStringParameters");
        if !query.is_empty() {
            let params: serde_json::Map<String, Value> = form_pairs(query);
            map.insert("queryStringParameters".into(), Value::Object(params));
        }
    }
    let h = event["headers"].as_object_mut().unwrap();
    h.remove("x-server-key");
    for (k, v) in headers {
        h.insert((*k).to_owned(), (*v).into());
    }
    if let Some(body) = body {
        event["body"] = body.to_string().into();
        event["isBase64Encoded"] = false.into();
    }
    event
}

fn form_pairs(query: &str) -> serde_json::Map<String, Value> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect()
}
