//! The consistency checker of the fault suites: reads a whole DynamoDB table (a test-only Scan,
//! never done by the service) and checks docs/api.md §4 as the table layout of `aws/src/dynamo`
//! expresses it: value claims ↔ channels, auth claims ↔ `used_for_auth` channels, the meta
//! item's count and primary (and each channel item's `is_primary` copy of it), the link index ↔
//! channels whose verification is a link, no orphans.
//! Also turns a table into a normalized state (no ids, digests, times or versions) so that two
//! runs of the same workload can be compared.

// Test support: a panic here is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

pub type Item = HashMap<String, AttributeValue>;

/// Every item of `table`, by a consistent Scan.
pub async fn scan(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(k) => start = Some(k.clone()),
            None => break,
        }
    }
    items
}

fn s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

fn num(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn boolean(item: &Item, name: &str) -> Option<bool> {
    item.get(name)?.as_bool().ok().copied()
}

/// A channel item as the checker sees it.
#[derive(Debug, Clone)]
pub struct Channel {
    pub user: String,
    pub id: String,
    pub value: String,
    pub used_for_auth: bool,
    pub is_verified: bool,
    /// The item's copy of the primary marker (absent: false).
    pub is_primary: bool,
    /// (strategy, digest hex, attempts, used)
    pub ver: Option<(String, String, i64, bool)>,
}

/// What a claim or index item points at: (user, channel id).
type Target = (String, String);

#[derive(Default)]
struct Parsed {
    channels: Vec<Channel>,
    /// user → (count, primary)
    metas: BTreeMap<String, (Option<i64>, Option<String>)>,
    /// (user, value) → target
    values: Vec<((String, String), Target)>,
    /// value → target
    auths: Vec<(String, Target)>,
    /// digest → target
    links: Vec<(String, Target)>,
    /// address → (sends, last)
    sends: Vec<(String, Vec<i64>, Option<i64>)>,
}

fn target(item: &Item) -> Option<Target> {
    Some((
        s(item, "user_id")?.to_owned(),
        s(item, "channel")?.to_owned(),
    ))
}

fn parse(items: &[Item], violations: &mut Vec<String>) -> Parsed {
    let mut p = Parsed::default();
    for item in items {
        let (Some(pk), Some(sk)) = (s(item, "pk"), s(item, "sk")) else {
            violations.push(format!("item without pk/sk: {item:?}"));
            continue;
        };
        let mut bad = |why: &str| violations.push(format!("{why}: {pk} / {sk}"));
        if let Some(user) = pk.strip_prefix("USER#") {
            if sk == "META" {
                p.metas.insert(
                    user.to_owned(),
                    (num(item, "count"), s(item, "primary").map(str::to_owned)),
                );
            } else if let Some(id) = sk.strip_prefix("CH#") {
                let ver = item.get("ver").and_then(|v| v.as_m().ok()).map(|m| {
                    (
                        s(m, "strategy").unwrap_or_default().to_owned(),
                        s(m, "digest").unwrap_or_default().to_owned(),
                        num(m, "attempts").unwrap_or(-1),
                        boolean(m, "used").unwrap_or(false),
                    )
                });
                let channel = (|| {
                    Some(Channel {
                        user: s(item, "user_id")?.to_owned(),
                        id: s(item, "id")?.to_owned(),
                        value: s(item, "value")?.to_owned(),
                        used_for_auth: boolean(item, "used_for_auth")?,
                        is_verified: boolean(item, "is_verified")?,
                        is_primary: boolean(item, "is_primary").unwrap_or(false),
                        ver,
                    })
                })();
                match channel {
                    Some(c) if c.user == user && c.id == id => p.channels.push(c),
                    _ => bad("channel item that does not decode or does not match its key"),
                }
            } else {
                bad("unknown item in a user partition");
            }
        } else if let Some(rest) = pk.strip_prefix("VALUE#") {
            match target(item) {
                Some(t) if sk == "VALUE" && rest.starts_with(&format!("{}#", t.0)) => {
                    let value = rest[t.0.len() + 1..].to_owned();
                    p.values.push(((t.0.clone(), value), t));
                }
                _ => bad("malformed value claim"),
            }
        } else if let Some(value) = pk.strip_prefix("AUTH#") {
            match target(item) {
                Some(t) if sk == "AUTH" => p.auths.push((value.to_owned(), t)),
                _ => bad("malformed auth claim"),
            }
        } else if let Some(digest) = pk.strip_prefix("LINK#") {
            match target(item) {
                Some(t) if sk == "LINK" => p.links.push((digest.to_owned(), t)),
                _ => bad("malformed link index item"),
            }
        } else if let Some(address) = pk.strip_prefix("SENDS#") {
            let sends = item
                .get("sends")
                .and_then(|v| v.as_l().ok())
                .map(|l| {
                    l.iter()
                        .filter_map(|v| v.as_n().ok()?.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            p.sends.push((address.to_owned(), sends, num(item, "last")));
        } else {
            bad("item of no known kind");
        }
    }
    p
}

/// Every violation of §4 in `items` (empty when the table is consistent).
pub fn check(items: &[Item], max_attempts: i64) -> Vec<String> {
    let mut v = Vec::new();
    let p = parse(items, &mut v);
    let by_id: HashMap<Target, &Channel> = p
        .channels
        .iter()
        .map(|c| ((c.user.clone(), c.id.clone()), c))
        .collect();
    // Invariant 1 and its claims: one channel per (user, value), each holding its claim.
    let mut per_value: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for c in &p.channels {
        per_value
            .entry((c.user.clone(), c.value.clone()))
            .or_default()
            .push(&c.id);
    }
    for (key, ids) in &per_value {
        if ids.len() > 1 {
            v.push(format!(
                "user {} has {} channels with value {}",
                key.0,
                ids.len(),
                key.1
            ));
        }
    }
    let claims: BTreeMap<_, _> = p.values.iter().cloned().collect();
    if claims.len() != p.values.len() {
        v.push("duplicate value claim items".into());
    }
    for c in &p.channels {
        match claims.get(&(c.user.clone(), c.value.clone())) {
            Some(t) if t.1 == c.id => {}
            Some(t) => v.push(format!(
                "value claim of {} / {} points at {}, not {}",
                c.user, c.value, t.1, c.id
            )),
            None => v.push(format!("channel {} ({}) has no value claim", c.id, c.value)),
        }
    }
    for ((user, value), t) in &p.values {
        match by_id.get(t) {
            Some(c) if c.value == *value && c.user == *user => {}
            Some(_) => v.push(format!(
                "value claim {user} / {value} points at a channel with another value"
            )),
            None => v.push(format!("orphan value claim {user} / {value}")),
        }
    }
    // Invariant 2: auth claims ↔ used_for_auth channels, one per value across users.
    let mut auth_channels: BTreeMap<&str, Vec<&Channel>> = BTreeMap::new();
    for c in p.channels.iter().filter(|c| c.used_for_auth) {
        auth_channels.entry(&c.value).or_default().push(c);
    }
    for (value, cs) in &auth_channels {
        if cs.len() > 1 {
            v.push(format!("{} channels use {value} for auth", cs.len()));
        }
    }
    let auths: BTreeMap<_, _> = p.auths.iter().cloned().collect();
    for c in p.channels.iter().filter(|c| c.used_for_auth) {
        match auths.get(&c.value) {
            Some(t) if *t == (c.user.clone(), c.id.clone()) => {}
            _ => v.push(format!(
                "auth channel {} ({}) does not hold the auth claim",
                c.id, c.value
            )),
        }
    }
    for (value, t) in &p.auths {
        match by_id.get(t) {
            Some(c) if c.used_for_auth && c.value == *value => {}
            _ => v.push(format!("orphan auth claim {value} → {}", t.1)),
        }
    }
    // Invariants 3 and 7: the meta item counts the user's channels and names at most one
    // primary, an existing channel of that user.
    let mut users: BTreeSet<&str> = p.channels.iter().map(|c| c.user.as_str()).collect();
    users.extend(p.metas.keys().map(String::as_str));
    for user in users {
        let n = p.channels.iter().filter(|c| c.user == user).count() as i64;
        let (count, primary) = p.metas.get(user).cloned().unwrap_or((None, None));
        if count.unwrap_or(0) != n {
            v.push(format!("user {user}: meta count {count:?}, {n} channels"));
        }
        for c in p.channels.iter().filter(|c| c.user == user) {
            if c.is_primary != (primary.as_deref() == Some(c.id.as_str())) {
                v.push(format!(
                    "user {user}: channel {} has is_primary {}, the meta's primary is {primary:?}",
                    c.id, c.is_primary
                ));
            }
        }
        if let Some(primary) = primary
            && !by_id.contains_key(&(user.to_owned(), primary.clone()))
        {
            v.push(format!(
                "user {user}: primary {primary} is no channel of the user"
            ));
        }
    }
    // The link index ↔ channels whose verification (outstanding or used) is a link.
    let links: BTreeMap<_, _> = p.links.iter().cloned().collect();
    for c in &p.channels {
        if let Some((strategy, digest, attempts, _)) = &c.ver {
            if *attempts < 0 || *attempts > max_attempts {
                v.push(format!("channel {}: {attempts} attempts", c.id));
            }
            if strategy == "email_link" {
                match links.get(digest) {
                    Some(t) if *t == (c.user.clone(), c.id.clone()) => {}
                    _ => v.push(format!("link of channel {} is not indexed", c.id)),
                }
            }
        }
    }
    for (digest, t) in &p.links {
        let live = by_id.get(t).is_some_and(|c| {
            c.ver
                .as_ref()
                .is_some_and(|(strategy, d, _, _)| strategy == "email_link" && d == digest)
        });
        if !live {
            v.push(format!(
                "orphan link index item {}… → {}",
                &digest[..8.min(digest.len())],
                t.1
            ));
        }
    }
    // The send log: `last` is the latest send (0 or absent when empty).
    for (address, sends, last) in &p.sends {
        let latest = sends.iter().max().copied().unwrap_or(0);
        if last.unwrap_or(0) != latest {
            v.push(format!(
                "send log of {address}: last {last:?}, latest send {latest}"
            ));
        }
    }
    v
}

/// A table's state without ids, digests, times or versions: per user, the channels by value
/// as (used_for_auth, is_verified, is_primary, verification (strategy, attempts, used)),
/// and per address the number of logged sends.
/// (used_for_auth, is_verified, is_primary, verification as (strategy, attempts, used)).
pub type ChannelState = (bool, bool, bool, Option<(String, i64, bool)>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub channels: BTreeMap<(String, String), ChannelState>,
    pub sends: BTreeMap<String, usize>,
}

pub fn normalize(items: &[Item]) -> Normalized {
    let mut ignored = Vec::new();
    let p = parse(items, &mut ignored);
    let primary = |c: &Channel| {
        p.metas
            .get(&c.user)
            .and_then(|m| m.1.as_deref())
            .is_some_and(|id| id == c.id)
    };
    Normalized {
        channels: p
            .channels
            .iter()
            .map(|c| {
                let ver = c.ver.as_ref().map(|(s, _, a, u)| (s.clone(), *a, *u));
                (
                    (c.user.clone(), c.value.clone()),
                    (c.used_for_auth, c.is_verified, primary(c), ver),
                )
            })
            .collect(),
        sends: p
            .sends
            .iter()
            .map(|(a, l, _)| (a.clone(), l.len()))
            .collect(),
    }
}
