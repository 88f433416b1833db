//! The connection guard on its own: framing of heads and bodies, and raw connections to a
//! small router served with short limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const SHORT: ConnLimits = ConnLimits {
    header_timeout: Duration::from_millis(300),
    body_timeout: Duration::from_millis(300),
    max_head_bytes: 1024,
};

fn guard() -> Guard<tokio::io::DuplexStream> {
    Guard::new(tokio::io::duplex(64).0, SHORT)
}

fn released(g: &Guard<tokio::io::DuplexStream>) -> &[u8] {
    &g.ready[g.ready_from..]
}

#[tokio::test]
async fn a_head_is_held_back_until_it_is_whole() {
    let mut g = guard();
    g.feed(b"GET / HTTP/1.1\r\nHost: a\r\n");
    assert!(released(&g).is_empty());
    g.feed(b"\r\n");
    assert_eq!(released(&g), b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(g.framing, Framing::Head);
    assert!(g.refusal.is_none());
}

#[tokio::test]
async fn a_sized_body_and_the_next_head_are_framed_in_one_read() {
    let mut g = guard();
    let two = b"POST /a HTTP/1.1\r\ncontent-length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\nGET /c";
    g.feed(two);
    assert_eq!(released(&g), &two[..two.len() - 6]);
    assert_eq!(g.head, b"GET /c");
}

#[tokio::test]
async fn a_chunked_body_with_extensions_and_trailers_is_followed_by_the_next_head() {
    let mut g = guard();
    let chunked = b"POST /a HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n\
        5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n";
    // One byte at a time, as a slow client would send it.
    for byte in chunked {
        g.feed(&[*byte]);
    }
    assert_eq!(released(&g), chunked.as_slice());
    assert_eq!(g.framing, Framing::Head);
    g.feed(b"GET / HTTP/1.1\r\n\r\n");
    assert!(released(&g).ends_with(b"GET / HTTP/1.1\r\n\r\n"));
}

#[tokio::test]
async fn oversized_and_malformed_heads_are_refused() {
    let mut g = guard();
    g.feed(format!("GET /{} HTTP/1.1\r\n", "a".repeat(2000)).as_bytes());
    assert_eq!(g.refusal, Some(ApiError::UriTooLong));
    assert!(released(&g).is_empty());

    let mut g = guard();
    g.feed(format!("GET / HTTP/1.1\r\nx-big: {}\r\n\r\n", "a".repeat(2000)).as_bytes());
    assert_eq!(g.refusal, Some(ApiError::HeadersTooLarge));

    let mut g = guard();
    g.feed("GET / HTTP/1.1\r\n".as_bytes());
    for i in 0..=MAX_HEADERS {
        g.feed(format!("h{i}: 1\r\n").as_bytes());
    }
    g.feed(b"\r\n");
    assert_eq!(g.refusal, Some(ApiError::HeadersTooLarge));

    for bad in [
        &b"GET / HTTP/1.1\r\nbad header\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
        b"POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
        b"GET http://[::1/ HTTP/1.1\r\n\r\n",
    ] {
        let mut g = guard();
        g.feed(bad);
        assert_eq!(
            g.refusal,
            Some(ApiError::MalformedRequest),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

/// A small app served with `SHORT` limits; its address.
async fn spawn() -> std::net::SocketAddr {
    let app = Router::new().route("/", get(|| async { "ok" })).route(
        "/echo",
        post(|body: Bytes| async move { format!("{}", body.len()) }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app, SHORT, std::future::pending()));
    addr
}

/// Sends `bytes` on a fresh connection and reads until the server closes it.
async fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .unwrap();
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[track_caller]
fn assert_json_error(answer: &str, status: &str, code: &str) {
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status}")),
        "{answer}"
    );
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("content-type: application/json"), "{answer}");
    assert!(lower.contains(&format!("x-known-error: {}", code.to_ascii_lowercase())));
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["code"], code);
}

#[tokio::test]
async fn a_head_that_never_ends_is_answered_408_in_json() {
    let addr = spawn().await;
    let (answer, took) = exchange(addr, b"GET / HTTP/1.1\r\nHost: a\r\n").await;
    assert_json_error(&answer, "408", "REQUEST_TIMEOUT");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // A connection that never says anything is timed out the same way.
    let (answer, _) = exchange(addr, b"").await;
    assert_json_error(&answer, "408", "REQUEST_TIMEOUT");
}

#[tokio::test]
async fn a_declared_body_that_never_arrives_is_answered_408_in_json() {
    let addr = spawn().await;
    let (answer, took) = exchange(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: a\r\ncontent-length: 10\r\n\r\nabc",
    )
    .await;
    assert_json_error(&answer, "408", "REQUEST_TIMEOUT");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn oversized_and_malformed_heads_are_answered_in_json() {
    let addr = spawn().await;
    let line = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(100_000));
    assert_json_error(
        &exchange(addr, line.as_bytes()).await.0,
        "414",
        "URI_TOO_LONG",
    );
    let big = format!("GET / HTTP/1.1\r\nx-big: {}\r\n\r\n", "a".repeat(5000));
    assert_json_error(
        &exchange(addr, big.as_bytes()).await.0,
        "431",
        "REQUEST_HEADER_FIELDS_TOO_LARGE",
    );
    assert_json_error(
        &exchange(addr, b"NOT HTTP\r\n\r\n").await.0,
        "400",
        "MALFORMED_REQUEST",
    );
}

#[tokio::test]
async fn a_kept_alive_connection_serves_requests_and_then_closes_when_idle() {
    let addr = spawn().await;
    let requests = b"POST /echo HTTP/1.1\r\nHost: a\r\ncontent-length: 3\r\n\r\nabc\
        POST /echo HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n\
        GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let (answer, took) = exchange(addr, requests).await;
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 3, "{answer}");
    assert!(answer.contains("\r\n\r\n3HTTP/1.1"), "{answer}");
    assert!(answer.contains("\r\n\r\n4HTTP/1.1"), "{answer}");
    assert!(
        answer.ends_with("\r\n\r\nok"),
        "no answer to the idle timeout: {answer}"
    );
    assert!(took >= SHORT.header_timeout, "{took:?}");
}

#[tokio::test]
async fn a_refused_head_after_a_served_request_is_answered_after_its_answer() {
    let addr = spawn().await;
    let mut requests = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
    requests.extend_from_slice(format!("GET /{} HTTP/1.1\r\n", "a".repeat(5000)).as_bytes());
    let (answer, _) = exchange(addr, &requests).await;
    let (first, second) = answer
        .split_once("\r\n\r\nok")
        .expect("the first answer, whole");
    assert!(first.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert_json_error(second, "414", "URI_TOO_LONG");
}
