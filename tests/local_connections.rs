//! The local server's connections, spoken to raw (docs/api.md §7): a head or a declared body that
//! does not arrive in time is answered `408`, an oversized request line or header block gets
//! the contract's JSON error, never a bare status or a hung connection.

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_local::conn::{ConnLimits, serve};
use cc_local::embedded::EmbeddedStore;
use cc_tests::{Backend, LocalServer, SERVER_KEY};
use contact_channels::Service;
use contact_channels::config::{Config, Profile};
use contact_channels::http::{Endpoint, router};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The whole API on the embedded store, served in this process with timeouts of 300 ms.
async fn spawn_with_short_timeouts() -> (SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_lookup(Profile::Local, |_| None).unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let app = router(Arc::new(Service::new(config, store)), Endpoint::ALL);
    let limits = ConnLimits {
        header_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        ..ConnLimits::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app, limits, std::future::pending()));
    (addr, dir)
}

/// Sends `bytes` on a new connection, then reads until the server closes it.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> (Answer, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut raw))
        .await
        .expect("the server answers and closes the connection")
        .unwrap();
    (Answer::parse(&raw), started.elapsed())
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
    raw: String,
}

impl Answer {
    fn parse(raw: &[u8]) -> Answer {
        let raw = String::from_utf8_lossy(raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let body = serde_json::from_str(body).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            raw,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[track_caller]
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.body["code"].as_str()),
            (status, Some(code)),
            "{}",
            self.raw
        );
        assert_eq!(self.header("x-known-error"), Some(code));
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert!(self.body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
}

#[tokio::test]
async fn a_create_whose_declared_body_never_arrives_is_answered_408_in_json() {
    let (addr, _dir) = spawn_with_short_timeouts().await;
    let request = format!(
        "POST /api/v1/contact-channels HTTP/1.1\r\nhost: a\r\nx-server-key: {SERVER_KEY}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"user_id\""
    );
    let (answer, took) = exchange(addr, request.as_bytes()).await;
    answer.assert_error(408, "REQUEST_TIMEOUT");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn headers_that_never_end_are_answered_408_in_json() {
    let (addr, _dir) = spawn_with_short_timeouts().await;
    let request = format!(
        "GET /api/v1/contact-channels?user_id=a HTTP/1.1\r\nx-server-key: {SERVER_KEY}\r\n"
    );
    let (answer, took) = exchange(addr, request.as_bytes()).await;
    answer.assert_error(408, "REQUEST_TIMEOUT");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn a_request_that_arrives_in_time_is_served_as_usual() {
    let (addr, _dir) = spawn_with_short_timeouts().await;
    let body =
        r#"{"user_id":"alice","type":"email","value":"a@example.com","used_for_auth":false}"#;
    let request = format!(
        "POST /api/v1/contact-channels HTTP/1.1\r\nhost: a\r\nx-server-key: {SERVER_KEY}\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (answer, _) = exchange(addr, request.as_bytes()).await;
    assert_eq!(answer.status, 201, "{}", answer.raw);
    assert_eq!(answer.body["value"], "a@example.com");
}

#[tokio::test]
async fn a_100_kb_request_line_and_a_huge_header_block_get_the_json_error() {
    let server = LocalServer::start_with(Backend::Local, &[]).await;
    let addr: SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let line = format!(
        "GET /api/v1/contact-channels?user_id={} HTTP/1.1\r\nhost: a\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let (answer, _) = exchange(addr, line.as_bytes()).await;
    answer.assert_error(414, "URI_TOO_LONG");
    let headers = format!(
        "GET /api/v1/contact-channels?user_id=a HTTP/1.1\r\nhost: a\r\nx-pad: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let (answer, _) = exchange(addr, headers.as_bytes()).await;
    answer.assert_error(431, "REQUEST_HEADER_FIELDS_TOO_LARGE");
    // The server is still there for everyone else.
    server
        .api()
        .list(&cc_tests::As::Server, "user_id=alice")
        .await
        .assert_ok(200);
}
