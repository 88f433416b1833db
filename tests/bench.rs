//! `make bench`: the Lambda binaries against a bare skeleton built with the same profile (zip
//! size, init time, peak memory), the first request of a cold function against warm ones over
//! TLS, and the local server's latency per call. Reports numbers and whether the targets of
//! issue 13 are met; never fails on a figure. Loopback only, bounded in count.
//!
//! "AWS" is moto behind a TLS terminator with a test CA made at start (`tls_proxy.py`), so a
//! cold connection pays a real handshake and certificate check, though no network round trip:
//! on Lambda a handshake costs more than here.

// A benchmark: a panic is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cc_tests::moto::{REGION, moto, uuid_like};
use cc_tests::runtime::{Function, Outcome, api_gateway_event, lambda_command};
use cc_tests::{As, Backend, LocalServer, SERVER_KEY, six_digits};
use serde_json::{Value, json};

const FUNCTIONS: [&str; 7] = cc_tests::FUNCTION_BINARIES;
const SKELETON: &str = "cc-skeleton";
/// The one function that sends mail: the only one allowed to be bigger than the skeleton.
const SENDS_MAIL: &str = "cc-send-verification";
const INIT_RUNS: usize = 60;
const COLD_RUNS: usize = 20;
const CALLS_PER_RUN: usize = 5;
const RSS_RUNS: usize = 5;
const ROUNDS: usize = 500;
/// Every real deployment sets it; nothing may fetch it before the first token arrives.
const JWKS_URL: &str = "https://auth.example.com/.well-known/jwks.json";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn p50_p90(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    (ms(percentile(samples, 0.5)), ms(percentile(samples, 0.9)))
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
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

fn venv_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({model}), Linux {}", kernel.trim())
}

fn now_utc() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// moto behind `tls_proxy.py`. `bundle` is the system's roots plus the test CA in one file,
/// as Amazon Linux keeps its roots, so loading the trust store costs what it costs there.
struct Tls {
    endpoint: String,
    bundle: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Tls {
    fn start(upstream: &str) -> Tls {
        let upstream_port = upstream.rsplit(':').next().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tls_proxy.py");
        let mut child = Command::new(venv_python())
            .arg(script)
            .args(["--upstream-port", upstream_port, "--dir"])
            .arg(dir.path())
            // Its standard input is its lifeline: it ends when this process does.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tls_proxy.py");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("tls_proxy.py printed its port");
        let mut bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        bundle.extend(std::fs::read(dir.path().join("ca.pem")).unwrap());
        let path = dir.path().join("bundle.pem");
        std::fs::write(&path, bundle).unwrap();
        Tls {
            endpoint: format!("https://localhost:{port}"),
            bundle: path,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Mode {
    /// As deployed: the DynamoDB connection is opened during Init.
    WarmUp,
    /// `DYNAMODB_WARM_UP=false`: Init makes no network call, like the skeleton.
    NoWarmUp,
    /// The same without `JWT_JWKS_URL`, to show what setting it costs.
    NoWarmUpNoJwks,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::WarmUp => "warm-up on",
            Mode::NoWarmUp => "warm-up off",
            Mode::NoWarmUpNoJwks => "warm-up off, no JWKS URL",
        }
    }
}

/// The environment of every binary: what the template gives the functions (its globals reach
/// `cc-events` too), with the verification secret in plain text instead of an ARN read from
/// Secrets Manager during Init.
fn lambda_env(tls: &Tls, table: &str, sender: &str, mode: Mode) -> Vec<(String, String)> {
    let digest = contact_channels::config::sha256_hex(SERVER_KEY.as_bytes());
    let bundle = tls.bundle.to_string_lossy();
    let mut env = vec![
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_ENDPOINT_URL", &tls.endpoint),
        ("SSL_CERT_FILE", &bundle),
        ("TABLE_NAME", table),
        ("MAIL_FROM", sender),
        ("APP_NAME", "Acme"),
        ("JWT_ISSUER", "https://auth.example.com/"),
        ("JWT_AUDIENCE", "contact-channels"),
        ("SERVER_KEY_SHA256", &digest),
        (
            "VERIFICATION_SECRET",
            "an-hmac-key-of-at-least-32-bytes-for-bench",
        ),
        ("ALLOWED_CALLBACK_URLS", "https://app.example.com"),
        ("SEND_COOLDOWN_SECONDS", "0"),
        ("MAX_SENDS_PER_DAY", "1000"),
        ("EVENT_BUS_NAME", "default"),
    ];
    if mode != Mode::NoWarmUpNoJwks {
        env.push(("JWT_JWKS_URL", JWKS_URL));
    }
    if mode != Mode::WarmUp {
        env.push(("DYNAMODB_WARM_UP", "false"));
    }
    env.into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// exec → the first `GET /next` on a Runtime API that answers nothing, then the process is
/// killed: the init time Lambda reports, without the first invocation.
async fn init_time(binary: &str, env: &[(String, String)]) -> Duration {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let mut cmd = lambda_command(binary, &address, env);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("start the function binary");
    let first = tokio::time::timeout(Duration::from_secs(10), first_request(&listener)).await;
    let _ = child.kill();
    let _ = child.wait();
    match first {
        Ok((at, line)) if line.starts_with("GET /2018-06-01/runtime/invocation/next ") => {
            at - start
        }
        Ok((_, line)) => panic!("{binary} sent {line:?} instead of polling for an event"),
        Err(_) => panic!("{binary} did not poll for an event within 10 s"),
    }
}

/// When the head of the first request on `listener` was read, and its request line.
async fn first_request(listener: &tokio::net::TcpListener) -> (Instant, String) {
    loop {
        let (mut stream, _) = listener.accept().await.unwrap();
        let head = cc_tests::read_head(&mut stream).await;
        let at = Instant::now();
        if !head.is_empty() {
            let text = String::from_utf8_lossy(&head);
            return (at, text.lines().next().unwrap_or_default().to_owned());
        }
    }
}

/// Waits until the function has finished Init and polls for its first event.
async fn ready(f: &Function, binary: &str) {
    for _ in 0..2000 {
        if let Some((kind, body)) = f.api.init_error() {
            panic!("{binary} failed Init: {kind} {body}; log: {}", f.log());
        }
        if f.api.next_polls() > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("{binary} did not finish Init; log: {}", f.log());
}

/// Hands `event` to the function: how long until its answer, and the answer.
async fn invoke(f: &Function, binary: &str, event: Value) -> (Duration, Value) {
    let (outcome, t) = timed(f.api.invoke(event)).await;
    match outcome {
        Outcome::Response(r) => {
            let status = r["statusCode"].as_u64().unwrap_or(200);
            assert!(status < 500, "{binary} answered {r}; log: {}", f.log());
            (t, r)
        }
        Outcome::Error(e) => panic!("{binary} failed: {e}; log: {}", f.log()),
    }
}

fn server_event(method: &str, path: &str, query: &str, body: Option<&Value>) -> Value {
    api_gateway_event(method, path, query, body, &[("x-server-key", SERVER_KEY)])
}

fn create_event(user: &str, value: &str) -> Value {
    let body = json!({ "user_id": user, "type": "email", "value": value, "used_for_auth": false });
    server_event("POST", "/api/v1/contact-channels", "", Some(&body))
}

/// Creates a channel through a running `cc-create`; its id.
async fn new_channel(creator: &Function, user: &str) -> String {
    let value = format!("{user}@example.com");
    let (_, r) = invoke(creator, "cc-create", create_event(user, &value)).await;
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    body["id"].as_str().expect("a channel id").to_owned()
}

/// The first request a cold binary gets in the peak-memory runs: one that does its real work.
async fn first_event(binary: &str, creator: Option<&Function>) -> Value {
    let user = format!("bench-{}", uuid_like());
    let path = |id: &str, rest: &str| format!("/api/v1/contact-channels/{user}/{id}{rest}");
    match binary {
        "cc-create" => create_event(&user, &format!("{user}@example.com")),
        "cc-list" | SKELETON => server_event("GET", "/api/v1/contact-channels", "user_id=u1", None),
        "cc-patch" => {
            let id = new_channel(creator.unwrap(), &user).await;
            let body = json!({ "used_for_auth": true });
            server_event("PATCH", &path(&id, ""), "", Some(&body))
        }
        "cc-delete" => {
            let id = new_channel(creator.unwrap(), &user).await;
            server_event("DELETE", &path(&id, ""), "", None)
        }
        "cc-send-verification" => {
            let id = new_channel(creator.unwrap(), &user).await;
            let body = json!({ "strategy": "email_code" });
            server_event(
                "POST",
                &path(&id, "/send-verification-code"),
                "",
                Some(&body),
            )
        }
        "cc-attempt" => {
            let id = new_channel(creator.unwrap(), &user).await;
            let body = json!({ "code": "123456" });
            server_event("POST", &path(&id, "/attempt-verification"), "", Some(&body))
        }
        "cc-events" => {
            let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/stream.json");
            serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap()
        }
        other => panic!("no first event for {other}"),
    }
}

fn zip_bytes(binary: &str) -> (u64, u64) {
    let path = cc_tests::bin(binary);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&path, dir.path().join("bootstrap")).unwrap();
    // Zipped as `make build` zips the deployables.
    let status = Command::new(venv_python())
        .args(["-m", "zipfile", "-c", "function.zip", "bootstrap"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "zipping {binary}");
    let zip = std::fs::metadata(dir.path().join("function.zip"))
        .unwrap()
        .len();
    (std::fs::metadata(&path).unwrap().len(), zip)
}

/// Whether `binary` was built: a partial build still yields the figures of what is there.
fn built(binary: &&str) -> bool {
    cc_tests::bin_dir().join(binary).exists()
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

#[tokio::main]
async fn main() {
    println!("\n# make bench, {}\n", now_utc());
    let skeleton = cc_tests::bin(SKELETON);
    println!(
        "Machine: {}. Binaries from `{}` (profile `perf`: opt-level s, thin LTO, 16 codegen units, panic abort, strip).",
        machine(),
        skeleton.parent().unwrap().display()
    );
    println!(
        "`ratio` is ours / the skeleton's (`cc-skeleton`: lambda_http, tokio, aws-config, DynamoDB and SES v2 clients built at Init, a fixed 200)."
    );
    let mut targets: Vec<String> = Vec::new();
    let all: Vec<&str> = FUNCTIONS.iter().chain([&SKELETON]).copied().collect();
    let (binaries, missing): (Vec<&str>, Vec<&str>) = all.into_iter().partition(built);
    assert!(built(&SKELETON), "the skeleton is the yardstick: build it");
    if !missing.is_empty() {
        println!("\n**Not built, so not measured: {}.**", missing.join(", "));
    }
    let functions: Vec<&str> = binaries
        .iter()
        .copied()
        .filter(|b| *b != SKELETON)
        .collect();

    // (c) zip sizes: no process to run, so first.
    let sizes: BTreeMap<&str, (u64, u64)> = binaries.iter().map(|b| (*b, zip_bytes(b))).collect();
    let skeleton_zip = sizes[SKELETON].1;
    println!(
        "\n## Zip per function (`bootstrap` deflated as `make build` does; MB = 10^6 bytes)\n"
    );
    println!("| binary               | binary MB | zip MB | ratio |");
    println!("|----------------------|-----------|--------|-------|");
    for b in &binaries {
        let (bin, zip) = sizes[b];
        let ratio = zip as f64 / skeleton_zip as f64;
        println!(
            "| {b:<20} | {:>9.2} | {:>6.2} | {ratio:>5.2} |",
            mb(bin),
            mb(zip)
        );
    }
    for &b in &functions {
        let ratio = sizes[b].1 as f64 / skeleton_zip as f64;
        let (limit, what) = if b == SENDS_MAIL {
            (1.1, "≤ 1.1 × skeleton")
        } else {
            (1.0, "< skeleton (sends no mail)")
        };
        let ok = if b == SENDS_MAIL {
            ratio <= limit
        } else {
            ratio < limit
        };
        targets.push(format!("zip {b} {what}: {ratio:.2} × — {}", met(ok)));
    }

    // Everything below talks to "AWS" over TLS.
    let moto = moto();
    let tls = Tls::start(&moto.endpoint);
    let table = moto.new_table().await;
    let sender = moto.new_sender().await;
    let env = |mode| lambda_env(&tls, &table, &sender, mode);
    let creator = if built(&"cc-create") {
        let f = Function::start("cc-create", &env(Mode::WarmUp)).await;
        ready(&f, "cc-create").await;
        Some(f)
    } else {
        None
    };

    // (a) init, interleaved so that a slow moment of the machine hits every binary alike.
    let modes = [Mode::WarmUp, Mode::NoWarmUp, Mode::NoWarmUpNoJwks];
    let mut init: BTreeMap<(Mode, &str), Vec<Duration>> = BTreeMap::new();
    let envs: Vec<(Mode, Vec<(String, String)>)> = modes.iter().map(|m| (*m, env(*m))).collect();
    for _ in 0..INIT_RUNS {
        for (mode, env) in &envs {
            for &b in &binaries {
                let t = init_time(b, env).await;
                init.entry((*mode, b)).or_default().push(t);
            }
        }
    }
    let mut init_p50: BTreeMap<(Mode, &str), (f64, f64)> = BTreeMap::new();
    for (key, samples) in &mut init {
        init_p50.insert(*key, p50_p90(samples));
    }
    println!(
        "\n## Init: exec → first `GET /next` ({INIT_RUNS} interleaved runs each, ms, p50 / p90)\n"
    );
    println!(
        "`JWT_JWKS_URL` set unless said. *warm-up on* is the function as deployed: its Init also opens the DynamoDB connection (TLS handshake with a {}-root trust store, one GetItem on moto), which the skeleton does not do; *warm-up off* (`DYNAMODB_WARM_UP=false`) makes no network call during Init, like the skeleton. `cc-events` never warms up (its first call is to EventBridge, from a stream batch).\n",
        count_roots(&tls.bundle)
    );
    println!(
        "| binary               | warm-up on      | ratio | warm-up off     | ratio | off, no JWKS URL | ratio |"
    );
    println!(
        "|----------------------|-----------------|-------|-----------------|-------|------------------|-------|"
    );
    for &b in &binaries {
        let mut row = format!("| {b:<20} |");
        for mode in modes {
            let (p50, p90) = init_p50[&(mode, b)];
            let skeleton = init_p50[&(mode, SKELETON)].0;
            row.push_str(&format!(
                " {p50:>6.2} / {p90:>6.2} | {:>5.2} |",
                p50 / skeleton
            ));
        }
        println!("{row}");
    }
    for &b in &functions {
        let skeleton = init_p50[&(Mode::NoWarmUp, SKELETON)].0;
        let off = init_p50[&(Mode::NoWarmUp, b)].0 / skeleton;
        let on = init_p50[&(Mode::WarmUp, b)].0 / init_p50[&(Mode::WarmUp, SKELETON)].0;
        targets.push(format!(
            "init {b} ≤ 1.1 × skeleton with JWT_JWKS_URL set: {off:.2} × with warm-up off — {}; {on:.2} × as deployed (warm-up on) — {}",
            met(off <= 1.1),
            met(on <= 1.1)
        ));
    }

    // (b) the first request of a cold function vs the next ones, with and without the warm-up.
    // Patching needs channels, made by a running cc-create.
    let cases: Vec<&str> = ["cc-list", "cc-patch", "cc-create"]
        .into_iter()
        .filter(|b| built(b) && (*b == "cc-list" || creator.is_some()))
        .collect();
    let mut first: BTreeMap<(&str, Mode), Vec<Duration>> = BTreeMap::new();
    let mut warm: BTreeMap<(&str, Mode), Vec<Duration>> = BTreeMap::new();
    for run in 0..COLD_RUNS {
        for &b in &cases {
            for mode in [Mode::WarmUp, Mode::NoWarmUp] {
                let user = format!("bench-{run}-{}", uuid_like());
                let channel = if b == "cc-patch" {
                    Some(new_channel(creator.as_ref().unwrap(), &user).await)
                } else {
                    None
                };
                let f = Function::start(b, &env(mode)).await;
                ready(&f, b).await;
                for call in 0..CALLS_PER_RUN {
                    let event = match (b, &channel) {
                        ("cc-patch", Some(id)) => {
                            // Alternates, so that every call writes.
                            let body = json!({ "used_for_auth": call % 2 == 0 });
                            let path = format!("/api/v1/contact-channels/{user}/{id}");
                            server_event("PATCH", &path, "", Some(&body))
                        }
                        ("cc-create", _) => {
                            create_event(&user, &format!("c{call}-{user}@example.com"))
                        }
                        _ => server_event("GET", "/api/v1/contact-channels", "user_id=u1", None),
                    };
                    let (t, _) = invoke(&f, b, event).await;
                    let into = if call == 0 { &mut first } else { &mut warm };
                    into.entry((b, mode)).or_default().push(t);
                }
            }
        }
    }
    println!(
        "\n## First request after a cold start vs warm requests, over TLS ({COLD_RUNS} cold starts each; warm = calls 2–{CALLS_PER_RUN}; ms, p50 / p90; event handed out → response posted)\n"
    );
    println!(
        "Requests go to moto (Python, one request at a time) through the TLS terminator on loopback: a warm request here is mostly moto's own time, and a handshake costs no network round trip. With the warm-up off, the first request also loads the trust store.\n"
    );
    println!("| function  | mode        | first           | warm            | first / warm |");
    println!("|-----------|-------------|-----------------|-----------------|--------------|");
    for &b in &cases {
        for mode in [Mode::WarmUp, Mode::NoWarmUp] {
            let (f50, f90) = p50_p90(first.get_mut(&(b, mode)).unwrap());
            let (w50, w90) = p50_p90(warm.get_mut(&(b, mode)).unwrap());
            let ratio = f50 / w50;
            println!(
                "| {b:<9} | {:<11} | {f50:>6.2} / {f90:>6.2} | {w50:>6.2} / {w90:>6.2} | {ratio:>12.2} |",
                mode.label()
            );
            if mode == Mode::WarmUp {
                targets.push(format!(
                    "first request ≤ 1.5 × warm over TLS, {b} as deployed: {ratio:.2} × — {}",
                    met(ratio <= 1.5)
                ));
            }
        }
    }

    // (d) peak memory after the first response, as deployed.
    let mut rss: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    // All but these need a channel made by cc-create.
    let standalone = ["cc-create", "cc-list", "cc-events", SKELETON];
    let measured: Vec<&str> = binaries
        .iter()
        .copied()
        .filter(|b| creator.is_some() || standalone.contains(b))
        .collect();
    let mut cold_first: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for _ in 0..RSS_RUNS {
        for &b in &measured {
            let event = first_event(b, creator.as_ref()).await;
            let f = Function::start(b, &env(Mode::WarmUp)).await;
            ready(&f, b).await;
            let (t, answer) = invoke(&f, b, event).await;
            if b == "cc-events" {
                assert_eq!(answer["batchItemFailures"], json!([]), "log: {}", f.log());
            }
            cold_first.entry(b).or_default().push(t);
            rss.entry(b)
                .or_default()
                .push(peak_rss_kib(f.pid()).unwrap());
        }
    }
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let skeleton_rss = median(rss.get_mut(SKELETON).unwrap());
    println!(
        "\n## Peak RSS (VmHWM) after the first response, as deployed ({RSS_RUNS} cold starts each, median)\n"
    );
    println!(
        "Each binary's first request does its real work over TLS (a create, a list, a patch, a delete, a code sent through SES, a wrong code, a stream batch put to EventBridge); the skeleton answers a fixed 200.\n"
    );
    println!("| binary               | peak RSS MiB | ratio | first request p50 ms |");
    println!("|----------------------|--------------|-------|----------------------|");
    for &b in &measured {
        let kib = median(rss.get_mut(b).unwrap());
        let (t50, _) = p50_p90(cold_first.get_mut(b).unwrap());
        println!(
            "| {b:<20} | {:>12.1} | {:>5.2} | {t50:>20.2} |",
            kib as f64 / 1024.0,
            kib as f64 / skeleton_rss as f64
        );
    }
    drop(creator);
    drop(tls);

    println!("\n## Targets (issue 13)\n");
    for t in &targets {
        println!("- {t}");
    }

    if built(&"contact-channels-local") {
        local_latency().await;
    }
}

fn count_roots(bundle: &Path) -> usize {
    std::fs::read_to_string(bundle)
        .unwrap_or_default()
        .matches("-----BEGIN CERTIFICATE-----")
        .count()
}

/// The local server on its embedded store, one call at a time.
async fn local_latency() {
    let server = LocalServer::start_with(Backend::Local, &[]).await;
    let api = server.api();
    println!("\n## Local server, embedded store, {ROUNDS} sequential calls each (ms)\n");
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
}
