//! Test support: spawns the real local server binary on a free loopback port with its own data
//! directory, captures its console and logs, and speaks HTTP to it like any client would.

// Test support: a panic here is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};

pub mod conformance;
pub mod faults;
pub mod invariants;
pub mod moto;
pub mod router;
pub mod runtime;

/// What the local server is wired to: its embedded store and outbox, or DynamoDB and SES
/// (on moto). `TEST_BACKEND=aws` runs the black-box suites against the latter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Local,
    Aws,
}

impl Backend {
    pub fn from_env() -> Backend {
        match std::env::var("TEST_BACKEND").as_deref() {
            Ok("aws") => Backend::Aws,
            _ => Backend::Local,
        }
    }
}

/// Where a test reads the mail the server sent.
#[derive(Clone, Debug)]
pub enum MailSource {
    /// The local outbox, through `/_dev/mailbox.json`.
    Outbox,
    /// SES on moto, mail from this sender.
    Ses { sender: String },
}

pub const SERVER_KEY: &str = "local-dev-server-key";
pub const JWT_SECRET: &str = "local-dev-secret";

/// The seven function binaries, in template order.
pub const FUNCTION_BINARIES: [&str; 7] = [
    "cc-create",
    "cc-list",
    "cc-patch",
    "cc-delete",
    "cc-send-verification",
    "cc-attempt",
    "cc-events",
];

/// Reads an HTTP/1 request head (up to the blank line) from `stream`; what arrived if the peer
/// closed first.
pub async fn read_head(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    head
}

/// A binary of this workspace, built by `cargo build --workspace --bins` (make test does it).
/// `CC_BIN_DIR` points elsewhere (e.g. `target/perf`), so that a harness built in the dev
/// profile, which builds in seconds, can measure the optimized binaries.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make test` (or `cargo build --workspace --bins` first)",
        path.display()
    );
    path
}

/// Where [`bin`] looks for the binaries.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CC_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> → target/debug
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.to_owned()
}

/// Collects a child's output stream line by line in a background thread.
pub fn capture_stream(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut buf = into.lock().unwrap();
            buf.push_str(&line);
            buf.push('\n');
        }
    });
}

pub struct LocalServer {
    pub base: String,
    pub data_dir: PathBuf,
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    env: Vec<(String, String)>,
    tmp_handle: Arc<tempfile::TempDir>,
    pub backend: Backend,
    mail: MailSource,
}

impl LocalServer {
    /// Starts `contact-channels-local` with a fresh data directory and `env` on top of the
    /// local defaults (cooldown off unless a test sets it).
    pub async fn start(env: &[(&str, &str)]) -> LocalServer {
        LocalServer::start_with(Backend::from_env(), env).await
    }

    /// Starts the server on a given backend (for tests of one backend's own features).
    pub async fn start_with(backend: Backend, env: &[(&str, &str)]) -> LocalServer {
        let tmp = Arc::new(tempfile::tempdir().expect("tempdir"));
        let mut all: Vec<(String, String)> = vec![("SEND_COOLDOWN_SECONDS".into(), "0".into())];
        let mail = match backend {
            Backend::Local => MailSource::Outbox,
            Backend::Aws => {
                let moto = moto::moto();
                let table = moto.new_table().await;
                let sender = moto.new_sender().await;
                all.extend(moto.env());
                for (k, v) in [
                    ("STORE", "dynamodb"),
                    ("MAILER", "ses"),
                    ("TABLE_NAME", &table),
                    ("MAIL_FROM", &sender),
                ] {
                    all.push((k.into(), v.to_string()));
                }
                MailSource::Ses { sender }
            }
        };
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        LocalServer::start_in(tmp, all, backend, mail).await
    }

    async fn start_in(
        tmp: Arc<tempfile::TempDir>,
        env: Vec<(String, String)>,
        backend: Backend,
        mail: MailSource,
    ) -> LocalServer {
        let data_dir = tmp.path().join("data");
        let mut cmd = Command::new(bin("contact-channels-local"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", "0")
            .env("DATA_DIR", &data_dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn local server");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        capture_stream(child.stdout.take().expect("stdout"), stdout.clone());
        capture_stream(child.stderr.take().expect("stderr"), stderr.clone());
        let mut base = None;
        for _ in 0..500 {
            if let Some(line) = stdout
                .lock()
                .unwrap()
                .lines()
                .find(|l| l.contains("listening on http://"))
            {
                base = line
                    .split("listening on ")
                    .nth(1)
                    .map(|s| s.trim().to_owned());
            }
            if base.is_some() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "local server exited with {status}: {}",
                    stderr.lock().unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let base = base
            .unwrap_or_else(|| panic!("local server did not start: {}", stderr.lock().unwrap()));
        LocalServer {
            base,
            data_dir,
            child,
            stdout,
            stderr,
            env,
            tmp_handle: tmp,
            backend,
            mail,
        }
    }

    /// Kills the process (no clean shutdown) and starts it again on the same data.
    pub async fn restart(mut self) -> LocalServer {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let tmp = self.tmp_handle.clone();
        let env = std::mem::take(&mut self.env);
        LocalServer::start_in(tmp, env, self.backend, self.mail.clone()).await
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        Some(self.child.id())
    }

    /// Everything the server wrote to standard error: its log.
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything the server wrote to standard output: banner and console mailbox.
    pub fn console(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn api(&self) -> Api {
        Api {
            mail: self.mail.clone(),
            ..Api::new(&self.base)
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A dev client token for `user`, as `make token` mints it.
/// The local profile's configuration with these variables set (the rest at their defaults).
pub fn local_config(vars: &[(&str, &str)]) -> contact_channels::config::Config {
    use contact_channels::config::{Config, Profile};
    Config::from_lookup(Profile::Local, |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .expect("a valid test configuration")
}

pub fn client_token(user: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({ "sub": user, "iat": now, "exp": now + 3600 });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// Who a request is sent as.
#[derive(Clone, Debug)]
pub enum As {
    Server,
    Client(String),
    Nobody,
}

pub fn client(user: &str) -> As {
    As::Client(user.to_owned())
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub mail: MailSource,
}

/// A response read whole: status, headers and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub async fn from(response: Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an error reply: status, code, the `x-known-error` header and a JSON body.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "body: {}",
            self.text
        );
        assert_eq!(self.header("x-known-error"), Some(code));
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert!(self.body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }

    #[track_caller]
    pub fn assert_ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        &self.body
    }
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_owned(),
            http: reqwest::Client::new(),
            mail: MailSource::Outbox,
        }
    }

    pub fn request(&self, method: Method, path: &str, who: &As) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{}", self.base, path));
        match who {
            As::Server => builder.header("x-server-key", SERVER_KEY),
            As::Client(user) => builder.bearer_auth(client_token(user)),
            As::Nobody => builder,
        }
    }

    pub async fn send(&self, method: Method, path: &str, who: &As, body: Option<Value>) -> Reply {
        let mut builder = self.request(method, path, who);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        Reply::from(builder.send().await.expect("request")).await
    }

    pub async fn create(&self, who: &As, body: Value) -> Reply {
        self.send(Method::POST, "/api/v1/contact-channels", who, Some(body))
            .await
    }

    /// Creates a channel as the server and returns its id.
    pub async fn create_ok(&self, user: &str, value: &str, used_for_auth: bool) -> String {
        let reply = self
            .create(&As::Server, json!({ "user_id": user, "type": "email", "value": value, "used_for_auth": used_for_auth }))
            .await;
        reply.assert_ok(201)["id"].as_str().unwrap().to_owned()
    }

    pub async fn list(&self, who: &As, query: &str) -> Reply {
        self.send(
            Method::GET,
            &format!("/api/v1/contact-channels?{query}"),
            who,
            None,
        )
        .await
    }

    pub async fn read(&self, who: &As, user: &str, id: &str) -> Reply {
        self.send(
            Method::GET,
            &format!("/api/v1/contact-channels/{user}/{id}"),
            who,
            None,
        )
        .await
    }

    pub async fn patch(&self, who: &As, user: &str, id: &str, body: Value) -> Reply {
        self.send(
            Method::PATCH,
            &format!("/api/v1/contact-channels/{user}/{id}"),
            who,
            Some(body),
        )
        .await
    }

    pub async fn delete(&self, who: &As, user: &str, id: &str) -> Reply {
        self.send(
            Method::DELETE,
            &format!("/api/v1/contact-channels/{user}/{id}"),
            who,
            None,
        )
        .await
    }

    pub async fn send_verification(&self, who: &As, user: &str, id: &str, body: Value) -> Reply {
        let path = format!("/api/v1/contact-channels/{user}/{id}/send-verification-code");
        self.send(Method::POST, &path, who, Some(body)).await
    }

    pub async fn attempt(&self, who: &As, user: &str, id: &str, code: &str) -> Reply {
        let path = format!("/api/v1/contact-channels/{user}/{id}/attempt-verification");
        self.send(Method::POST, &path, who, Some(json!({ "code": code })))
            .await
    }

    pub async fn verify(&self, token: &str) -> Reply {
        self.send(
            Method::POST,
            "/api/v1/contact-channels/verify",
            &As::Nobody,
            Some(json!({ "code": token })),
        )
        .await
    }

    pub async fn check(&self, token: &str) -> Reply {
        let path = "/api/v1/contact-channels/verify/check-code";
        self.send(
            Method::POST,
            path,
            &As::Nobody,
            Some(json!({ "code": token })),
        )
        .await
    }

    /// The mail this server sent, newest first: the local mailbox, or SES on moto.
    pub async fn mailbox(&self) -> Vec<Value> {
        match &self.mail {
            MailSource::Outbox => {
                let reply = self
                    .send(Method::GET, "/_dev/mailbox.json", &As::Nobody, None)
                    .await;
                reply.assert_ok(200).as_array().cloned().unwrap_or_default()
            }
            MailSource::Ses { sender } => moto::moto().sent_mail(sender).await,
        }
    }

    /// The newest mail to `to`, read from the mailbox (never from the store).
    pub async fn last_mail_to(&self, to: &str) -> Value {
        self.mailbox()
            .await
            .into_iter()
            .find(|m| m["to"] == to)
            .unwrap_or_else(|| panic!("no mail to {to}"))
    }

    /// The six-digit code in the newest mail to `to`.
    pub async fn code_sent_to(&self, to: &str) -> String {
        let mail = self.last_mail_to(to).await;
        six_digits(mail["text"].as_str().unwrap_or_default()).expect("a six-digit code in the mail")
    }

    /// The link token (`code` query parameter) in the newest mail to `to`.
    pub async fn token_sent_to(&self, to: &str) -> String {
        let mail = self.last_mail_to(to).await;
        link_token(mail["text"].as_str().unwrap_or_default())
            .expect("a link with code= in the mail")
    }
}

/// The first run of exactly six consecutive ASCII digits in `text`.
pub fn six_digits(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 6 {
                return Some(text[start..i].to_owned());
            }
        } else {
            i += 1;
        }
    }
    None
}

/// The first URL in `text`, whole.
pub fn first_url(text: &str) -> Option<String> {
    text.split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(str::to_owned)
}

/// The value of the `code` query parameter of the first URL in `text`.
pub fn link_token(text: &str) -> Option<String> {
    let url = first_url(text)?;
    let query = url.split_once('?')?.1.split('#').next()?.to_owned();
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("code=").map(str::to_owned))
}
