//! `make bench`, local part: CPU per request of the local server (embedded store, outbox) for
//! each operation under 16 concurrent keep-alive connections, beside the same figure for a peer
//! (issue 13), with throughput, latency, peak memory and the data directory's size after churn.
//! Each operation is measured in several rounds and the median printed, with the range. Bounded
//! by count; loopback only. Every answer's status is asserted, so a run that measured
//! errors (a 429, a 409) fails instead of printing fast numbers.

// A benchmark: a panic is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_tests::{Api, As, Backend, LocalServer, six_digits};
use reqwest::Method;
use serde_json::{Value, json};

/// Requests per operation: at 100 ticks a second, enough for a tenth of a tick per request.
const N: usize = 2_000;
const CONNECTIONS: usize = 16;
/// Each operation is measured this many times (rounds on fresh users) and the median round
/// printed with the range: one 0.3-second window of a shared VM is not a figure.
const ROUNDS: usize = 5;
/// Churn after the measured operations: this many channels created, every other one deleted.
const CHURN: usize = 6_000;

/// ms of CPU per request of django-allauth's headless e-mail API (gunicorn + SQLite, 16
/// connections), measured in 2026 on this machine (issue 13).
const PEER_MS: [(&str, f64); 6] = [
    ("list", 1.97),
    ("add", 5.79),
    ("make primary", 4.65),
    ("send-verification", 3.61),
    ("verify", 5.83),
    ("delete", 4.29),
];
const TARGET_RATIO: f64 = 20.0;
const TARGET_RSS_MIB: f64 = 32.0;
const TARGET_BYTES_PER_CHANNEL: f64 = 2048.0;

/// One request of an operation: method, path and body; the status it must get.
struct Call {
    method: Method,
    path: String,
    body: Option<Value>,
    status: u16,
}

struct Measured {
    name: &'static str,
    cpu_ms_per_request: f64,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// utime + stime of `pid`, in clock ticks (proc(5): fields 14 and 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/pid/stat");
    // The command name may hold spaces; the fields after it do not.
    let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Field 3 (state) is the first after the name, so field k is at index k - 3.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn status_kib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Bytes of every file under `dir`, by name.
fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            out.extend(files(&entry.path()));
        } else {
            out.push((entry.file_name().to_string_lossy().into_owned(), meta.len()));
        }
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Sends `calls` over `CONNECTIONS` connections (each task its own client, so each its own
/// kept-alive connection), asserting every status; answers the bodies in call order.
async fn drive(base: &str, calls: Vec<Call>) -> (Vec<Value>, Vec<Duration>, Duration) {
    let calls = Arc::new(calls);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (calls, next) = (calls.clone(), next.clone());
            let api = Api::new(base);
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(call) = calls.get(i) else {
                        return done;
                    };
                    let started = Instant::now();
                    let mut request = api.request(call.method.clone(), &call.path, &As::Server);
                    if let Some(body) = &call.body {
                        request = request.json(body);
                    }
                    let response = request.send().await.expect("request");
                    let status = response.status().as_u16();
                    let text = response.text().await.expect("body");
                    let took = started.elapsed();
                    assert_eq!(status, call.status, "{} {}: {text}", call.method, call.path);
                    done.push((i, serde_json::from_str(&text).unwrap_or(Value::Null), took));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a connection task"));
    }
    let wall = start.elapsed();
    all.sort_by_key(|(i, _, _)| *i);
    let latencies = all.iter().map(|(_, _, t)| *t).collect();
    (
        all.into_iter().map(|(_, b, _)| b).collect(),
        latencies,
        wall,
    )
}

/// Runs one operation and measures the server's CPU across it.
async fn measure(
    server: &LocalServer,
    name: &'static str,
    calls: Vec<Call>,
    ticks_per_second: f64,
    results: &mut Vec<Measured>,
) -> Vec<Value> {
    let pid = server.pid().unwrap();
    let count = calls.len();
    let before = cpu_ticks(pid);
    let (bodies, mut latencies, wall) = drive(&server.base, calls).await;
    let ticks = cpu_ticks(pid) - before;
    latencies.sort();
    results.push(Measured {
        name,
        cpu_ms_per_request: ticks as f64 * 1000.0 / ticks_per_second / count as f64,
        per_second: count as f64 / wall.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    });
    bodies
}

fn create(user: &str, value: &str) -> Call {
    let body = json!({ "user_id": user, "type": "email", "value": value, "used_for_auth": true });
    Call {
        method: Method::POST,
        path: "/api/v1/contact-channels".into(),
        body: Some(body),
        status: 201,
    }
}

fn delete(user: &str, id: &str) -> Call {
    Call {
        method: Method::DELETE,
        path: format!("/api/v1/contact-channels/{user}/{id}"),
        body: None,
        status: 200,
    }
}

fn channel_ids(bodies: &[Value]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| b["id"].as_str().expect("a channel id").to_owned())
        .collect()
}

/// The newest code mailed to each of `addresses`, read from the console mailbox: each mail is
/// printed as `MAIL to ADDRESS`, its subject and its text. Waits (a little) for the harness to
/// have read what the server printed.
async fn codes_sent(server: &LocalServer, addresses: &[String]) -> HashMap<String, String> {
    for _ in 0..50 {
        let mut codes = HashMap::new();
        for mail in server.console().split("MAIL to ").skip(1) {
            let (to, rest) = mail.split_once('\n').unwrap_or((mail, ""));
            if let Some(code) = six_digits(rest) {
                codes.insert(to.trim().to_owned(), code);
            }
        }
        if addresses.iter().all(|a| codes.contains_key(a)) {
            return codes;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the console mailbox does not show a code for every address");
}

/// One round of the measured operations, on users and addresses of its own (`r{round}u{i}`):
/// each user gets a first channel (left alone) and a second one that every operation works on,
/// so that making it primary moves the marker and deleting it is not the last channel.
async fn run_round(
    server: &LocalServer,
    round: usize,
    ticks_per_second: f64,
    results: &mut Vec<Measured>,
) {
    let base = "/api/v1/contact-channels";
    let users: Vec<String> = (0..N).map(|i| format!("r{round}u{i}")).collect();
    let address = |i: usize| format!("r{round}u{i}@example.com");
    let hz = ticks_per_second;

    let firsts = (0..N).map(|i| create(&users[i], &format!("r{round}first{i}@example.com")));
    drive(&server.base, firsts.collect()).await;
    let adds = (0..N).map(|i| create(&users[i], &address(i))).collect();
    let ids = channel_ids(&measure(server, "add", adds, hz, results).await);

    let lists = users.iter().map(|u| Call {
        method: Method::GET,
        path: format!("{base}?user_id={u}"),
        body: None,
        status: 200,
    });
    let listed = measure(server, "list", lists.collect(), hz, results).await;
    assert!(
        listed
            .iter()
            .all(|l| l["items"].as_array().unwrap().len() == 2)
    );

    let primaries = (0..N).map(|i| Call {
        method: Method::PATCH,
        path: format!("{base}/{}/{}", users[i], ids[i]),
        body: Some(json!({ "is_primary": true })),
        status: 200,
    });
    measure(server, "make primary", primaries.collect(), hz, results).await;

    let sends = (0..N).map(|i| Call {
        method: Method::POST,
        path: format!("{base}/{}/{}/send-verification-code", users[i], ids[i]),
        body: Some(json!({ "strategy": "email_code" })),
        status: 200,
    });
    measure(server, "send-verification", sends.collect(), hz, results).await;

    // The codes, from the console mailbox (the server's standard output, which the harness
    // keeps whole; the outbox keeps only about its newest 3,000 mails), read outside the
    // measured spans.
    let codes = codes_sent(server, &(0..N).map(address).collect::<Vec<_>>()).await;
    let verifies = (0..N).map(|i| Call {
        method: Method::POST,
        path: format!("{base}/{}/{}/attempt-verification", users[i], ids[i]),
        body: Some(json!({ "code": codes[&address(i)] })),
        status: 200,
    });
    let verified = measure(server, "verify", verifies.collect(), hz, results).await;
    assert!(verified.iter().all(|c| c["is_verified"] == true));

    let deletes = (0..N).map(|i| delete(&users[i], &ids[i]));
    measure(server, "delete", deletes.collect(), hz, results).await;
}

#[tokio::main]
async fn main() {
    // Limits far above what the bench does, so that it measures writes, not refusals.
    let env = [
        ("SEND_COOLDOWN_SECONDS", "0"),
        ("MAX_SENDS_PER_DAY", "1000"),
        ("MAX_CHANNELS_PER_USER", "1000"),
    ];
    let server = LocalServer::start_with(Backend::Local, &env).await;
    let pid = server.pid().unwrap();
    let hz = clock_ticks_per_second();
    let mut results = Vec::new();
    for round in 0..ROUNDS {
        run_round(&server, round, hz, &mut results).await;
    }

    // Churn: many channels come and go; half of them stay.
    let churn_users: Vec<String> = (0..CHURN).map(|i| format!("c{i}")).collect();
    let creates = (0..CHURN).map(|i| create(&churn_users[i], &format!("c{i}@example.com")));
    let churned = channel_ids(&drive(&server.base, creates.collect()).await.0);
    let deletes = (0..CHURN)
        .step_by(2)
        .map(|i| delete(&churn_users[i], &churned[i]));
    drive(&server.base, deletes.collect()).await;
    let live = ROUNDS * N + CHURN / 2;
    // The server compacts its store when writes pause (local/src/embedded.rs,
    // `IDLE_LOOK_AFTER`): the directory is measured as an idle server leaves it.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // target/<profile> (or CC_BIN_DIR): where the server binary came from.
    let bin_dir = cc_tests::bin_dir();
    let profile = bin_dir.file_name().unwrap_or_default();
    println!(
        "\nLocal server (profile {}), {CONNECTIONS} keep-alive connections, {N} requests per \
         operation and round, the median of {ROUNDS} rounds (CPU range over the rounds beside it); \
         server CPU = utime + stime of its process.\nPeer: django-allauth headless \
         e-mail API on gunicorn + SQLite, same operations, measured 2026 on this machine.\n",
        profile.to_string_lossy()
    );
    println!(
        "| operation         | CPU ms/req | range         | peer ms/req | peer/ours | ≥{TARGET_RATIO}×  | req/s  | p50 ms | p99 ms |"
    );
    println!(
        "|-------------------|------------|---------------|-------------|-----------|-------|--------|--------|--------|"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (name, peer) in PEER_MS {
        let mut rounds: Vec<&Measured> = results.iter().filter(|m| m.name == name).collect();
        rounds.sort_by(|a, b| a.cpu_ms_per_request.total_cmp(&b.cpu_ms_per_request));
        let m = rounds[rounds.len() / 2];
        let (low, high) = (rounds[0], rounds[rounds.len() - 1]);
        let ratio = peer / m.cpu_ms_per_request.max(f64::MIN_POSITIVE);
        let verdict = if ratio >= TARGET_RATIO { "ok" } else { "BELOW" };
        println!(
            "| {:<17} | {:>10.3} | {:>13} | {:>11.2} | {:>8.1}× | {verdict:<5} | {:>6.0} | {:>6.2} | {:>6.2} |",
            m.name,
            m.cpu_ms_per_request,
            format!(
                "{:.3}–{:.3}",
                low.cpu_ms_per_request, high.cpu_ms_per_request
            ),
            peer,
            ratio,
            m.per_second,
            ms(m.p50),
            ms(m.p99)
        );
    }

    let rss = status_kib(pid, "VmHWM:") / 1024.0;
    let files = files(&server.data_dir);
    let bytes: u64 = files.iter().map(|(_, len)| len).sum();
    let per_channel = bytes as f64 / live as f64;
    let verdict = |ok: bool| if ok { "ok" } else { "ABOVE TARGET" };
    println!(
        "\nPeak RSS (VmHWM) after the bench: {rss:.1} MiB (target ≤ {TARGET_RSS_MIB} MiB: {})",
        verdict(rss <= TARGET_RSS_MIB)
    );
    println!(
        "Data directory after churn ({CHURN} created, {} deleted) and 2 s idle: {bytes} bytes for \
         {live} live channels = {per_channel:.0} bytes per channel (target ≤ {TARGET_BYTES_PER_CHANNEL}: {})",
        CHURN / 2,
        verdict(per_channel <= TARGET_BYTES_PER_CHANNEL)
    );
    for (name, len) in files {
        println!("  {name:<20} {len:>12} bytes");
    }
}
