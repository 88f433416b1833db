//! Process death on the embedded store: the local server (`contact-channels-local`, embedded
//! redb store) runs a write loop of concurrent clients over HTTP and is killed with SIGKILL at
//! random points (fixed seed, bounded count). After each kill the redb file is opened by the test,
//! its six tables are read whole and checked against docs/api.md §4 with the same checker as the
//! DynamoDB fault suite (each table row turned into the item DynamoDB would hold); then the
//! server restarts on the same data and must serve every user.

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use cc_tests::invariants::{Item, check};
use cc_tests::{As, Backend, LocalServer};
use contact_channels::domain::channel::ChannelRecord;
use contact_channels::store::kv::UserMeta;
use redb::{Database, ReadableTable};
use reqwest::Method;
use serde_json::{Value, json};

// The embedded store's own tables and key separator, read directly after each kill.
use cc_local::embedded::{AUTH_VALUES, CHANNELS, LINKS, SEND_LOGS, SEP, USER_VALUES, USERS};

const ROUNDS: u64 = 12;
const WRITERS: u64 = 3;
const USERS_N: u64 = 3;
const VALUES_N: u64 = 5;

/// A small deterministic generator (fixed seed): the suite is reproducible up to timing.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn item(
    pk: String,
    sk: &str,
    attrs: impl IntoIterator<Item = (&'static str, AttributeValue)>,
) -> Item {
    let mut item: Item = HashMap::from([("pk".to_owned(), s(&pk)), ("sk".to_owned(), s(sk))]);
    item.extend(attrs.into_iter().map(|(k, v)| (k.to_owned(), v)));
    item
}

fn target(key: &str) -> [(&'static str, AttributeValue); 2] {
    let (user, id) = key.split_once(SEP).expect("user␟channel");
    [("user_id", s(user)), ("channel", s(id))]
}

/// The embedded store's rows as the items DynamoDB would hold for them (aws/src/dynamo/mod.rs).
fn read_store(dir: &Path) -> Vec<Item> {
    // The killed process holds the file lock until the kernel has torn it down.
    let mut opened = Database::open(dir.join("channels.redb"));
    for _ in 0..100 {
        if !matches!(opened, Err(redb::DatabaseError::DatabaseAlreadyOpen)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        opened = Database::open(dir.join("channels.redb"));
    }
    let db = opened.expect("the store opens after a kill");
    let txn = db.begin_read().unwrap();
    let mut items = Vec::new();
    let metas: HashMap<String, UserMeta> = txn
        .open_table(USERS)
        .unwrap()
        .iter()
        .unwrap()
        .map(|row| {
            let (user, bytes) = row.unwrap();
            let meta = serde_json::from_slice(bytes.value()).expect("a meta decodes");
            (user.value().to_owned(), meta)
        })
        .collect();
    for row in txn.open_table(CHANNELS).unwrap().iter().unwrap() {
        let (_, bytes) = row.unwrap();
        let r: ChannelRecord = serde_json::from_slice(bytes.value()).expect("a channel decodes");
        // The embedded store keeps the primary in the user's meta only: the DynamoDB item's
        // copy of it (for the stream) has nothing to disagree with here.
        let primary = metas.get(r.user_id.as_str()).and_then(|m| m.primary);
        let mut attrs = vec![
            ("id", s(&r.id.to_string())),
            ("user_id", s(r.user_id.as_str())),
            ("value", s(r.value.as_str())),
            ("used_for_auth", AttributeValue::Bool(r.used_for_auth)),
            ("is_verified", AttributeValue::Bool(r.is_verified)),
            ("is_primary", AttributeValue::Bool(primary == Some(r.id))),
        ];
        if let Some(v) = &r.verification {
            let ver = HashMap::from([
                ("strategy".to_owned(), s(v.strategy.as_str())),
                ("digest".to_owned(), s(&v.digest.to_hex())),
                ("attempts".to_owned(), n(v.attempts)),
                ("used".to_owned(), AttributeValue::Bool(v.used)),
            ]);
            attrs.push(("ver", AttributeValue::M(ver)));
        }
        items.push(item(
            format!("USER#{}", r.user_id),
            &format!("CH#{}", r.id),
            attrs,
        ));
    }
    for (user, meta) in &metas {
        let mut attrs = vec![("count", n(meta.count))];
        if let Some(p) = meta.primary {
            attrs.push(("primary", s(&p.to_string())));
        }
        items.push(item(format!("USER#{user}"), "META", attrs));
    }
    for row in txn.open_table(USER_VALUES).unwrap().iter().unwrap() {
        let (key, id) = row.unwrap();
        let (user, value) = key.value().split_once(SEP).unwrap();
        let attrs = [("user_id", s(user)), ("channel", s(id.value()))];
        items.push(item(format!("VALUE#{user}#{value}"), "VALUE", attrs));
    }
    for row in txn.open_table(AUTH_VALUES).unwrap().iter().unwrap() {
        let (value, key) = row.unwrap();
        items.push(item(
            format!("AUTH#{}", value.value()),
            "AUTH",
            target(key.value()),
        ));
    }
    for row in txn.open_table(LINKS).unwrap().iter().unwrap() {
        let (digest, key) = row.unwrap();
        items.push(item(
            format!("LINK#{}", digest.value()),
            "LINK",
            target(key.value()),
        ));
    }
    for row in txn.open_table(SEND_LOGS).unwrap().iter().unwrap() {
        let (address, bytes) = row.unwrap();
        let log: Vec<i64> = serde_json::from_slice(bytes.value()).expect("a send log decodes");
        let last = log.iter().max().copied().unwrap_or(0);
        let attrs = [
            ("sends", AttributeValue::L(log.iter().map(n).collect())),
            ("last", n(last)),
        ];
        items.push(item(format!("SENDS#{}", address.value()), "SENDS", attrs));
    }
    items
}

/// Kills the server with SIGKILL: no clean shutdown, no flush.
fn kill_9(server: &LocalServer) {
    let pid = server.pid().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success(), "kill -9 {pid}");
}

/// One request; `None` once the server is gone (the writer then stops).
async fn call(
    api: &cc_tests::Api,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let mut builder = api
        .request(method, path, &As::Server)
        .timeout(Duration::from_secs(10));
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let response = builder.send().await.ok()?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Some((status, body))
}

/// Random writes until the server dies: create, patch (primary, value, auth), delete, sends,
/// wrong guesses. Every answer must be a contract status; counts the writes answered.
async fn writer(api: cc_tests::Api, seed: u64, done: Arc<AtomicUsize>) {
    let mut rng = Lcg(seed);
    let base = "/api/v1/contact-channels";
    loop {
        let user = format!("u{}", rng.next(USERS_N));
        let value = format!("v{}@example.com", rng.next(VALUES_N));
        let Some((status, list)) =
            call(&api, Method::GET, &format!("{base}?user_id={user}"), None).await
        else {
            return;
        };
        assert_eq!(status, 200, "list: {list}");
        let ids: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        let pick = (!ids.is_empty()).then(|| ids[rng.next(ids.len() as u64) as usize].clone());
        let choice = rng.next(8);
        let request = match (choice, pick) {
            (0..=2, _) | (_, None) => {
                let body = json!({ "user_id": user, "type": "email", "value": value,
                    "used_for_auth": rng.next(2) == 0, "is_primary": rng.next(2) == 0 });
                (Method::POST, base.to_owned(), Some(body))
            }
            (3, Some(id)) => {
                let body = match rng.next(3) {
                    0 => json!({ "is_primary": rng.next(2) == 0 }),
                    1 => json!({ "value": value }),
                    _ => json!({ "used_for_auth": rng.next(2) == 0 }),
                };
                (Method::PATCH, format!("{base}/{user}/{id}"), Some(body))
            }
            (4, Some(id)) => (Method::DELETE, format!("{base}/{user}/{id}"), None),
            (5, Some(id)) => {
                let body = json!({ "strategy": "email_code" });
                (
                    Method::POST,
                    format!("{base}/{user}/{id}/send-verification-code"),
                    Some(body),
                )
            }
            (6, Some(id)) => {
                let body =
                    json!({ "strategy": "email_link", "callback_url": "http://localhost:5173/v" });
                (
                    Method::POST,
                    format!("{base}/{user}/{id}/send-verification-code"),
                    Some(body),
                )
            }
            (_, Some(id)) => {
                let body = json!({ "code": "000000" });
                (
                    Method::POST,
                    format!("{base}/{user}/{id}/attempt-verification"),
                    Some(body),
                )
            }
        };
        let (method, path, body) = request;
        let Some((status, answer)) = call(&api, method, &path, body).await else {
            return;
        };
        assert!(
            matches!(status, 200 | 201 | 400 | 404 | 409 | 429),
            "{path}: {status} {answer}"
        );
        done.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_local_server_leaves_a_consistent_store_that_reopens() {
    let mut server = LocalServer::start_with(Backend::Local, &[]).await;
    let mut rng = Lcg(0x00c0_ffee);
    let done = Arc::new(AtomicUsize::new(0));
    let mut seen_items = 0;
    for round in 0..ROUNDS {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(writer(server.api(), round * 100 + w, done.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(50 + rng.next(400))).await;
        kill_9(&server);
        for w in writers {
            tokio::time::timeout(Duration::from_secs(20), w)
                .await
                .expect("a writer ends once the server is gone")
                .expect("a writer saw only contract answers");
        }
        let items = read_store(&server.data_dir);
        let violations = check(&items, 5);
        assert!(violations.is_empty(), "after kill {round}: {violations:?}");
        seen_items = items.len();
        server = server.restart().await;
        let api = server.api();
        for u in 0..USERS_N {
            let reply = api.list(&As::Server, &format!("user_id=u{u}")).await;
            reply.assert_ok(200);
        }
    }
    let writes = done.load(Ordering::SeqCst);
    eprintln!(
        "RESULT crash_embedded: {ROUNDS} kills, {writes} writes answered, {seen_items} rows at the end"
    );
    assert!(
        writes >= ROUNDS as usize,
        "the loop wrote something between kills: {writes}"
    );
    assert!(seen_items > 0, "the store holds data");
}

/// Group commit: concurrent creates share commits; the one whose condition fails (a value the
/// user already has) fails alone, and every create answered `201` is on disk after a SIGKILL
/// that follows the answers at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_concurrent_writes_is_durable_and_a_refused_one_fails_alone() {
    const CREATES: usize = 64;
    let server = LocalServer::start_with(Backend::Local, &[]).await;
    let api = server.api();
    let taken = api.create_ok("g0", "taken@example.com", false).await;
    let requests: Vec<_> = (0..CREATES)
        .map(|i| {
            let api = server.api();
            // Request 17 asks for the address g0 has already.
            let (user, value) = match i {
                17 => ("g0".to_owned(), "taken@example.com".to_owned()),
                _ => (format!("g{}", i % 8), format!("v{i}@example.com")),
            };
            tokio::spawn(async move {
                let body = json!({ "user_id": user, "type": "email", "value": value,
                    "used_for_auth": true, "is_primary": i % 3 == 0 });
                (i, user, api.create(&As::Server, body).await)
            })
        })
        .collect();
    let mut answered = Vec::new();
    for request in requests {
        let (i, user, reply) = request.await.unwrap();
        if i == 17 {
            reply.assert_error(409, "CONTACT_CHANNEL_ALREADY_EXISTS");
        } else {
            answered.push((
                user,
                reply.assert_ok(201)["id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    kill_9(&server);
    let items = read_store(&server.data_dir);
    let violations = check(&items, 5);
    assert!(violations.is_empty(), "{violations:?}");
    let stored: Vec<(String, String)> = items
        .iter()
        .filter_map(|item| {
            let id = item["sk"].as_s().ok()?.strip_prefix("CH#")?;
            Some((item["user_id"].as_s().ok()?.clone(), id.to_owned()))
        })
        .collect();
    assert_eq!(
        stored.len(),
        CREATES,
        "the first channel and 63 answered creates"
    );
    assert!(stored.contains(&("g0".to_owned(), taken)));
    for channel in &answered {
        assert!(
            stored.contains(channel),
            "{channel:?} was answered 201 but is not stored"
        );
    }
}
