//! `make bench`: latency of each API call against the local server (embedded store), its peak
//! memory, and the cold start of a Lambda binary through the Runtime API. Reports numbers; the
//! targets live here, never in timed unit tests. Loopback only, bounded in count and time.

// A benchmark: a panic is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use cc_tests::runtime::{Function, api_gateway_event};
use cc_tests::{As, Backend, LocalServer, SERVER_KEY, six_digits};
use serde_json::json;

const ROUNDS: usize = 500;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {name:<22} | {:>5} | {:>8.2} | {:>8.2} | {:>8.2} |",
        samples.len(),
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.9)),
        ms(percentile(&samples, 0.99))
    );
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn timed<F: std::future::Future<Output = T>, T>(f: F) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

#[tokio::main]
async fn main() {
    let server = LocalServer::start_with(Backend::Local, &[]).await;
    let api = server.api();
    println!("\nLocal server, embedded store, {ROUNDS} sequential calls each (ms):\n");
    println!("| call                   | count |      p50 |      p90 |      p99 |");
    println!("|------------------------|-------|----------|----------|----------|");

    let mut create = Vec::new();
    let mut ids = Vec::new();
    for i in 0..ROUNDS {
        let body = json!({ "user_id": format!("u{i}"), "type": "email", "value": format!("u{i}@example.com"), "used_for_auth": true });
        let (reply, t) = timed(api.create(&As::Server, body)).await;
        ids.push((
            format!("u{i}"),
            reply.body["id"].as_str().unwrap().to_owned(),
        ));
        create.push(t);
    }
    report("create", create);

    let mut read = Vec::new();
    let mut list = Vec::new();
    let mut patch = Vec::new();
    for (user, id) in &ids {
        read.push(timed(api.read(&As::Server, user, id)).await.1);
        list.push(
            timed(api.list(&As::Server, &format!("user_id={user}")))
                .await
                .1,
        );
        patch.push(
            timed(api.patch(&As::Server, user, id, json!({ "is_primary": true })))
                .await
                .1,
        );
    }
    report("read", read);
    report("list", list);
    report("update (make primary)", patch);

    let mut send = Vec::new();
    let mut attempt = Vec::new();
    for (user, id) in ids.iter().take(ROUNDS / 5) {
        send.push(
            timed(api.send_verification(
                &As::Server,
                user,
                id,
                json!({ "strategy": "email_code" }),
            ))
            .await
            .1,
        );
        let code = six_digits(
            api.last_mail_to(&format!("{user}@example.com")).await["text"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        attempt.push(timed(api.attempt(&As::Server, user, id, &code)).await.1);
    }
    report("send-verification", send);
    report("attempt (right code)", attempt);

    let mut delete = Vec::new();
    for (user, id) in &ids {
        delete.push(timed(api.delete(&As::Server, user, id)).await.1);
    }
    report("delete", delete);
    if let Some(kib) = server.pid().and_then(peak_rss_kib) {
        println!(
            "\nLocal server peak RSS after {} calls: {:.1} MiB",
            ROUNDS * 6,
            kib as f64 / 1024.0
        );
    }

    println!("\nLambda binary cold start through the Runtime API (embedded store, 5 runs, ms):\n");
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = [
        ("STORE", "embedded"),
        ("MAILER", "outbox"),
        (
            "VERIFICATION_SECRET",
            "an-hmac-key-of-at-least-32-bytes-for-bench",
        ),
        (
            "SERVER_KEY_SHA256",
            &contact_channels::config::sha256_hex(SERVER_KEY.as_bytes()),
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([(
        "DATA_DIR".to_owned(),
        dir.path().to_string_lossy().into_owned(),
    )])
    .collect();
    let mut cold = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let f = Function::start("cc-list", &env).await;
        let event = api_gateway_event(
            "GET",
            "/api/v1/contact-channels",
            "user_id=u1",
            None,
            &[("x-server-key", SERVER_KEY)],
        );
        let (status, _, _) = f.call(event).await;
        assert_eq!(status, 200);
        cold.push(start.elapsed());
        drop(f);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("| call                   | count |      p50 |      p90 |      p99 |");
    println!("|------------------------|-------|----------|----------|----------|");
    report("spawn + init + 1st call", cold);
}
