//! The store conformance suite: every behaviour the domain relies on, checked the same way on
//! every `ChannelStore` implementation (`tests/store_conformance.rs` runs it on each).

use std::sync::Arc;

use contact_channels::domain::channel::{ChannelRecord, Digest, Verification};
use contact_channels::domain::{ChannelId, EmailAddress, Strategy, UserId, now_millis};
use contact_channels::rules::send_limits::{DAY_MILLIS, SendLimits};
use contact_channels::rules::verification::LinkRefusal;
use contact_channels::store::{
    Change, ChannelStore, PrimaryAsRead, PrimaryChange, RedeemError, SendLogChange, WriteError,
};

pub type Store = Arc<dyn ChannelStore>;

fn user(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

fn record(u: &str, value: &str, auth: bool) -> ChannelRecord {
    ChannelRecord {
        id: ChannelId::new_random(),
        user_id: user(u),
        value: EmailAddress::parse(value).unwrap(),
        used_for_auth: auth,
        is_verified: false,
        created_at_millis: now_millis(),
        verification: None,
        last_sent_at_millis: None,
        version: 0,
    }
}

async fn create(
    store: &Store,
    r: &ChannelRecord,
    primary: bool,
) -> Result<ChannelRecord, WriteError> {
    let change = Change::Create {
        record: r.clone(),
        primary: match primary {
            true => set(store, &r.user_id).await,
            false => PrimaryChange::Keep,
        },
        max_channels: 3,
    };
    Ok(store.apply(change).await?.unwrap().record)
}

/// The user's primary as the store has it now.
async fn primary_now(store: &Store, user: &UserId) -> Option<PrimaryAsRead> {
    let list = store.list(user).await.unwrap();
    list.iter().find(|c| c.is_primary).map(|c| PrimaryAsRead {
        id: c.record.id,
        version: c.record.version,
    })
}

/// Making a channel of `user` primary, demoting the primary read now.
async fn set(store: &Store, user: &UserId) -> PrimaryChange {
    PrimaryChange::Set {
        previous: primary_now(store, user).await,
    }
}

/// Makes `r`, unchanged and read as not primary, primary in place of `previous`.
fn switch(r: &ChannelRecord, previous: Option<PrimaryAsRead>) -> Change {
    Change::Update {
        before: r.clone(),
        after: r.clone(),
        primary: PrimaryChange::Set { previous },
        was_primary: false,
        send_log: None,
    }
}

/// How many of racing writes got through; every other one must have been stale.
async fn through<T>(tasks: Vec<tokio::task::JoinHandle<Result<T, WriteError>>>) -> usize {
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(WriteError::Stale) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    ok
}

/// Switches each of `records` to primary at once, all having read `previous`; how many got
/// through (every other one must be stale).
async fn race_to_primary(
    store: &Store,
    records: Vec<ChannelRecord>,
    previous: Option<PrimaryAsRead>,
) -> usize {
    let tasks: Vec<_> = records
        .into_iter()
        .map(|r| {
            let store = store.clone();
            tokio::spawn(async move { store.apply(switch(&r, previous)).await })
        })
        .collect();
    through(tasks).await
}

/// Asserts that `id` is alice's one primary channel.
async fn only_primary(store: &Store, id: ChannelId) {
    let listed = store.list(&user("alice")).await.unwrap();
    let primaries: Vec<_> = listed.iter().filter(|c| c.is_primary).collect();
    assert_eq!(primaries.len(), 1, "{listed:?}");
    assert_eq!(primaries[0].record.id, id);
}

/// Alice's `a` (primary) and `b` (not).
async fn primary_and_other(store: &Store) -> (ChannelRecord, ChannelRecord) {
    let a = create(store, &record("alice", "a@example.com", false), true)
        .await
        .unwrap();
    let b = create(store, &record("alice", "b@example.com", false), false)
        .await
        .unwrap();
    (a, b)
}

/// The channel as stored now.
async fn reread(store: &Store, r: &ChannelRecord) -> ChannelRecord {
    store.get(&r.user_id, r.id).await.unwrap().unwrap().record
}

async fn update(
    store: &Store,
    before: &ChannelRecord,
    after: ChannelRecord,
    primary: PrimaryChange,
) -> Result<ChannelRecord, WriteError> {
    let was_primary = store
        .get(&before.user_id, before.id)
        .await?
        .is_some_and(|c| c.is_primary);
    let change = Change::Update {
        before: before.clone(),
        after,
        primary,
        was_primary,
        send_log: None,
    };
    Ok(store.apply(change).await?.unwrap().record)
}

async fn delete(store: &Store, before: &ChannelRecord) -> Result<(), WriteError> {
    let was_primary = store
        .get(&before.user_id, before.id)
        .await?
        .is_some_and(|c| c.is_primary);
    store
        .apply(Change::Delete {
            before: before.clone(),
            was_primary,
        })
        .await
        .map(|_| ())
}

fn link(digest: u8, expires: i64) -> Verification {
    Verification {
        strategy: Strategy::EmailLink,
        digest: Digest::from_bytes([digest; 32]),
        expires_at_millis: expires,
        attempts: 0,
        used: false,
    }
}

pub async fn created_channels_read_back_with_version_one(store: Store) {
    let r = record("alice", "a@example.com", true);
    let written = create(&store, &r, true).await.unwrap();
    assert_eq!(written.version, 1);
    let got = store.get(&r.user_id, r.id).await.unwrap().unwrap();
    assert_eq!(got.record, written);
    assert!(got.is_primary);
    let listed = store.list(&r.user_id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].record, written);
    assert!(store.get(&user("bob"), r.id).await.unwrap().is_none());
    assert!(store.list(&user("nobody")).await.unwrap().is_empty());
}

pub async fn one_value_per_user_and_one_auth_channel_per_value(store: Store) {
    create(&store, &record("alice", "a@example.com", true), false)
        .await
        .unwrap();
    assert_eq!(
        create(&store, &record("alice", "a@example.com", false), false).await,
        Err(WriteError::ValueExists)
    );
    // Value before auth, in the contract's order.
    assert_eq!(
        create(&store, &record("alice", "a@example.com", true), false).await,
        Err(WriteError::ValueExists)
    );
    assert_eq!(
        create(&store, &record("bob", "a@example.com", true), false).await,
        Err(WriteError::AuthTaken)
    );
    create(&store, &record("bob", "a@example.com", false), false)
        .await
        .unwrap();
    assert_eq!(store.list(&user("bob")).await.unwrap().len(), 1);
}

pub async fn the_per_user_limit_holds(store: Store) {
    for i in 0..3 {
        create(
            &store,
            &record("alice", &format!("a{i}@example.com"), false),
            false,
        )
        .await
        .unwrap();
    }
    assert_eq!(
        create(&store, &record("alice", "a9@example.com", false), false).await,
        Err(WriteError::TooMany)
    );
    assert_eq!(
        create(&store, &record("alice", "a0@example.com", false), false).await,
        Err(WriteError::ValueExists)
    );
    let first = store.list(&user("alice")).await.unwrap()[0].record.clone();
    delete(&store, &first).await.unwrap();
    create(&store, &record("alice", "a9@example.com", false), false)
        .await
        .unwrap();
}

pub async fn a_stale_version_writes_nothing(store: Store) {
    let r = create(&store, &record("alice", "a@example.com", false), false)
        .await
        .unwrap();
    let mut next = r.clone();
    next.used_for_auth = true;
    let v2 = update(&store, &r, next.clone(), PrimaryChange::Keep)
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let mut again = r.clone();
    again.is_verified = true;
    assert_eq!(
        update(&store, &r, again, PrimaryChange::Keep).await,
        Err(WriteError::Stale)
    );
    assert_eq!(delete(&store, &r).await, Err(WriteError::Stale));
    let got = store.get(&r.user_id, r.id).await.unwrap().unwrap().record;
    assert_eq!(got, v2);
}

pub async fn value_and_auth_claims_follow_updates_and_deletes(store: Store) {
    let r = create(&store, &record("alice", "a@example.com", true), false)
        .await
        .unwrap();
    let other = create(&store, &record("alice", "b@example.com", false), false)
        .await
        .unwrap();
    let mut moved = r.clone();
    moved.value = EmailAddress::parse("b@example.com").unwrap();
    assert_eq!(
        update(&store, &r, moved, PrimaryChange::Keep).await,
        Err(WriteError::ValueExists)
    );
    let mut moved = r.clone();
    moved.value = EmailAddress::parse("c@example.com").unwrap();
    let r = update(&store, &r, moved, PrimaryChange::Keep)
        .await
        .unwrap();
    // The old value and its auth claim are free; the new ones are taken.
    create(&store, &record("bob", "a@example.com", true), false)
        .await
        .unwrap();
    assert_eq!(
        create(&store, &record("carol", "c@example.com", true), false).await,
        Err(WriteError::AuthTaken)
    );
    let mut auth = other.clone();
    auth.used_for_auth = true;
    let other = update(&store, &other, auth, PrimaryChange::Keep)
        .await
        .unwrap();
    assert_eq!(
        create(&store, &record("carol", "b@example.com", true), false).await,
        Err(WriteError::AuthTaken)
    );
    let mut off = other.clone();
    off.used_for_auth = false;
    update(&store, &other, off, PrimaryChange::Keep)
        .await
        .unwrap();
    create(&store, &record("carol", "b@example.com", true), false)
        .await
        .unwrap();
    // A value someone else uses for auth cannot be moved onto while used for auth.
    let mut onto = r.clone();
    onto.value = EmailAddress::parse("a@example.com").unwrap();
    assert_eq!(
        update(&store, &r, onto, PrimaryChange::Keep).await,
        Err(WriteError::AuthTaken)
    );
    delete(&store, &r).await.unwrap();
    create(&store, &record("dave", "c@example.com", true), false)
        .await
        .unwrap();
    create(&store, &record("alice", "c@example.com", false), false)
        .await
        .unwrap();
}

pub async fn one_primary_per_user(store: Store) {
    let a = create(&store, &record("alice", "a@example.com", false), true)
        .await
        .unwrap();
    let b = create(&store, &record("alice", "b@example.com", false), true)
        .await
        .unwrap();
    let primaries = |list: Vec<contact_channels::domain::channel::StoredChannel>| {
        list.into_iter()
            .filter(|c| c.is_primary)
            .map(|c| c.record.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        primaries(store.list(&user("alice")).await.unwrap()),
        vec![b.id]
    );
    // Creating `b` primary demoted `a`, which moved its version.
    let a = reread(&store, &a).await;
    assert_eq!(a.version, 2);
    let a = update(&store, &a, a.clone(), set(&store, &a.user_id).await)
        .await
        .unwrap();
    assert_eq!(
        primaries(store.list(&user("alice")).await.unwrap()),
        vec![a.id]
    );
    update(&store, &a, a.clone(), PrimaryChange::Clear)
        .await
        .unwrap();
    assert!(primaries(store.list(&user("alice")).await.unwrap()).is_empty());
    let b = store.get(&b.user_id, b.id).await.unwrap().unwrap().record;
    let b = update(&store, &b, b.clone(), set(&store, &b.user_id).await)
        .await
        .unwrap();
    delete(&store, &b).await.unwrap();
    assert!(primaries(store.list(&user("alice")).await.unwrap()).is_empty());
}

/// A write that read the primary marker must not apply once the marker moved, whichever way.
pub async fn a_moved_primary_marker_makes_the_write_stale(store: Store) {
    let a = create(&store, &record("alice", "a@example.com", false), true)
        .await
        .unwrap();
    let b = create(&store, &record("alice", "b@example.com", false), false)
        .await
        .unwrap();
    // Read while `a` was primary; then `b` becomes primary (and `a`'s version moves too).
    let b = update(&store, &b, b.clone(), set(&store, &b.user_id).await)
        .await
        .unwrap();
    let stale_delete = Change::Delete {
        before: a.clone(),
        was_primary: true,
    };
    assert_eq!(store.apply(stale_delete).await, Err(WriteError::Stale));
    let stale_clear = Change::Update {
        before: a.clone(),
        after: a.clone(),
        primary: PrimaryChange::Clear,
        was_primary: true,
        send_log: None,
    };
    assert_eq!(store.apply(stale_clear).await, Err(WriteError::Stale));
    let stale_delete = Change::Delete {
        before: b.clone(),
        was_primary: false,
    };
    assert_eq!(store.apply(stale_delete).await, Err(WriteError::Stale));
    // Nothing was written: both channels exist, `b` is still the primary.
    let listed = store.list(&user("alice")).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|c| c.is_primary == (c.record.id == b.id)));
    // Read again, the same deletes go through.
    delete(&store, &reread(&store, &a).await).await.unwrap();
    delete(&store, &b).await.unwrap();
    assert!(store.list(&user("alice")).await.unwrap().is_empty());
}

pub async fn a_channel_created_with_a_link_is_indexed(store: Store) {
    let now = now_millis();
    let mut r = record("alice", "a@example.com", false);
    r.verification = Some(link(7, now + 60_000));
    let r = create(&store, &r, false).await.unwrap();
    let digest = Digest::from_bytes([7; 32]);
    assert_eq!(
        store.find_link(&digest).await.unwrap(),
        Some((r.user_id.clone(), r.id))
    );
    store.redeem_link(&digest, now).await.unwrap();
    let got = store.get(&r.user_id, r.id).await.unwrap().unwrap().record;
    assert!(got.is_verified);
    assert_eq!(got.version, 2);
}

pub async fn links_are_indexed_replaced_and_removed(store: Store) {
    let now = now_millis();
    let r = create(&store, &record("alice", "a@example.com", false), false)
        .await
        .unwrap();
    let mut with_link = r.clone();
    with_link.verification = Some(link(1, now + 60_000));
    let r = update(&store, &r, with_link, PrimaryChange::Keep)
        .await
        .unwrap();
    let d1 = Digest::from_bytes([1; 32]);
    assert_eq!(
        store.find_link(&d1).await.unwrap(),
        Some((r.user_id.clone(), r.id))
    );
    let mut replaced = r.clone();
    replaced.verification = Some(link(2, now + 60_000));
    let r = update(&store, &r, replaced, PrimaryChange::Keep)
        .await
        .unwrap();
    assert_eq!(store.find_link(&d1).await.unwrap(), None);
    assert_eq!(
        store.redeem_link(&d1, now).await,
        Err(RedeemError::Refused(LinkRefusal::NotFound))
    );
    let d2 = Digest::from_bytes([2; 32]);
    delete(&store, &r).await.unwrap();
    assert_eq!(store.find_link(&d2).await.unwrap(), None);
    assert_eq!(
        store.redeem_link(&d2, now).await,
        Err(RedeemError::Refused(LinkRefusal::NotFound))
    );
}

pub async fn redeeming_a_link_verifies_once_and_expiry_is_checked_on_read(store: Store) {
    let now = now_millis();
    let r = create(&store, &record("alice", "a@example.com", false), false)
        .await
        .unwrap();
    let mut with_link = r.clone();
    with_link.verification = Some(link(3, now + 60_000));
    let r = update(&store, &r, with_link, PrimaryChange::Keep)
        .await
        .unwrap();
    let d = Digest::from_bytes([3; 32]);
    // Expired by the clock even though no TTL process removed anything.
    assert_eq!(
        store.redeem_link(&d, now + 60_000).await,
        Err(RedeemError::Refused(LinkRefusal::Expired))
    );
    store.redeem_link(&d, now).await.unwrap();
    let got = store.get(&r.user_id, r.id).await.unwrap().unwrap().record;
    assert!(got.is_verified);
    assert!(got.verification.as_ref().unwrap().used);
    assert_eq!(got.version, r.version + 1);
    assert_eq!(
        store.redeem_link(&d, now).await,
        Err(RedeemError::Refused(LinkRefusal::AlreadyUsed))
    );
    assert_eq!(
        store.redeem_link(&d, now + 60_000).await,
        Err(RedeemError::Refused(LinkRefusal::Expired))
    );
    assert_eq!(
        store.redeem_link(&Digest::from_bytes([9; 32]), now).await,
        Err(RedeemError::Refused(LinkRefusal::NotFound))
    );
}

/// Writes `current` unchanged together with a change to its address's send log.
async fn log_send(
    store: &Store,
    current: &ChannelRecord,
    log: SendLogChange,
) -> Result<ChannelRecord, WriteError> {
    let change = Change::Update {
        before: current.clone(),
        after: current.clone(),
        primary: PrimaryChange::Keep,
        was_primary: false,
        send_log: Some(log),
    };
    Ok(store.apply(change).await?.unwrap().record)
}

pub async fn the_send_log_admits_up_to_the_cap_and_releases(store: Store) {
    let now = now_millis();
    let mut current = create(&store, &record("alice", "a@example.com", false), false)
        .await
        .unwrap();
    let address = current.value.clone();
    let admit = |at: i64| SendLogChange::Admit {
        address: address.clone(),
        at,
        limits: SendLimits {
            cap: 3,
            cooldown_millis: 0,
        },
    };
    for i in 0..3 {
        current = log_send(&store, &current, admit(now + i)).await.unwrap();
    }
    assert_eq!(
        store.send_log(&address).await.unwrap(),
        vec![now, now + 1, now + 2]
    );
    match log_send(&store, &current, admit(now + 10)).await {
        Err(WriteError::SendLimited(wait)) => assert!((86_390..=86_400).contains(&wait), "{wait}"),
        other => panic!("expected the daily cap, got {other:?}"),
    }
    // Refused: nothing written, not even the channel's version.
    let stored = store
        .get(&current.user_id, current.id)
        .await
        .unwrap()
        .unwrap()
        .record;
    assert_eq!(stored.version, current.version);
    let release = SendLogChange::Release {
        address: address.clone(),
        at: now + 1,
    };
    current = log_send(&store, &current, release).await.unwrap();
    assert_eq!(store.send_log(&address).await.unwrap(), vec![now, now + 2]);
    // A full log whose entries are a day old admits again, pruned.
    let later = now + DAY_MILLIS + 5;
    for at in [now + 3, later] {
        current = log_send(&store, &current, admit(at)).await.unwrap();
    }
    assert_eq!(store.send_log(&address).await.unwrap(), vec![later]);
}

/// The cooldown protects the address: a send to it from another user's channel waits too, and
/// a released send no longer counts.
pub async fn the_cooldown_holds_per_address_across_users(store: Store) {
    let now = now_millis();
    let alice = create(&store, &record("alice", "shared@example.com", false), false)
        .await
        .unwrap();
    let bob = create(&store, &record("bob", "shared@example.com", false), false)
        .await
        .unwrap();
    let admit = |at: i64| SendLogChange::Admit {
        address: alice.value.clone(),
        at,
        limits: SendLimits {
            cap: 10,
            cooldown_millis: 30_000,
        },
    };
    let alice = log_send(&store, &alice, admit(now)).await.unwrap();
    assert_eq!(
        log_send(&store, &bob, admit(now + 1_000)).await,
        Err(WriteError::SendLimited(29))
    );
    let release = SendLogChange::Release {
        address: alice.value.clone(),
        at: now,
    };
    log_send(&store, &alice, release).await.unwrap();
    let bob = log_send(&store, &bob, admit(now + 2_000)).await.unwrap();
    assert_eq!(
        log_send(&store, &bob, admit(now + 31_000)).await,
        Err(WriteError::SendLimited(1))
    );
    log_send(&store, &bob, admit(now + 32_000)).await.unwrap();
    assert_eq!(
        store.send_log(&bob.value).await.unwrap(),
        vec![now + 2_000, now + 32_000]
    );
}

pub async fn racing_creates_of_one_auth_value_admit_exactly_one(store: Store) {
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                create(
                    &store,
                    &record(&format!("u{i}"), "race@example.com", true),
                    false,
                )
                .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(WriteError::AuthTaken | WriteError::Stale) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 1);
}

pub async fn racing_primary_switches_leave_one_primary(store: Store) {
    let mut records = Vec::new();
    for i in 0..3 {
        records.push(
            create(
                &store,
                &record("alice", &format!("p{i}@example.com"), false),
                false,
            )
            .await
            .unwrap(),
        );
    }
    // All read "no primary": the marker's compare-and-swap lets one through.
    assert_eq!(race_to_primary(&store, records, None).await, 1);
    let list = store.list(&user("alice")).await.unwrap();
    assert_eq!(list.iter().filter(|c| c.is_primary).count(), 1);
}

/// Making `b` primary writes the demoted `a` too: its version moves, it reads back not
/// primary, and nothing else of it changes.
pub async fn making_a_channel_primary_demotes_the_previous_one(store: Store) {
    let (a, b) = primary_and_other(&store).await;
    let previous = primary_now(&store, &a.user_id).await;
    assert_eq!(previous.map(|p| (p.id, p.version)), Some((a.id, 1)));
    let b = store.apply(switch(&b, previous)).await.unwrap().unwrap();
    assert_eq!((b.record.version, b.is_primary), (2, true));
    let got = store.get(&a.user_id, a.id).await.unwrap().unwrap();
    assert!(!got.is_primary);
    assert_eq!(got.record, ChannelRecord { version: 2, ..a });
    let listed = store.list(&user("alice")).await.unwrap();
    assert!(
        listed
            .iter()
            .all(|c| c.is_primary == (c.record.id == b.record.id))
    );
    // A channel created primary demotes the same way.
    let c = create(&store, &record("alice", "c@example.com", false), true)
        .await
        .unwrap();
    let b_now = store.get(&c.user_id, b.record.id).await.unwrap().unwrap();
    assert_eq!((b_now.record.version, b_now.is_primary), (3, false));
    only_primary(&store, c.id).await;
}

/// A write of the demoted channel that read it before the demotion (as primary, at its old
/// version) is stale: it cannot put it back as primary.
pub async fn a_write_of_the_demoted_channel_read_before_is_stale(store: Store) {
    let (a, b) = primary_and_other(&store).await;
    let b = store
        .apply(switch(&b, primary_now(&store, &b.user_id).await))
        .await
        .unwrap()
        .unwrap();
    let mut renamed = a.clone();
    renamed.used_for_auth = true;
    let stale = Change::Update {
        before: a.clone(),
        after: renamed.clone(),
        primary: PrimaryChange::Keep,
        was_primary: true,
        send_log: None,
    };
    assert_eq!(store.apply(stale).await, Err(WriteError::Stale));
    let got = store.get(&a.user_id, a.id).await.unwrap().unwrap();
    assert_eq!((got.record.version, got.is_primary), (2, false));
    assert!(!got.record.used_for_auth);
    // Read again, it goes through and stays not primary.
    let a = update(&store, &got.record, renamed, PrimaryChange::Keep)
        .await
        .unwrap();
    let got = store.get(&a.user_id, a.id).await.unwrap().unwrap();
    assert_eq!((got.record.version, got.is_primary), (3, false));
    let b = store.get(&b.record.user_id, b.record.id).await.unwrap();
    assert!(b.unwrap().is_primary);
}

/// A switch is stale when what it read of the primary moved: the marker (another switch got
/// there first) or the demoted channel's version.
pub async fn a_switch_that_read_an_outdated_primary_is_stale(store: Store) {
    let (a, b) = primary_and_other(&store).await;
    let c = create(&store, &record("alice", "c@example.com", false), false)
        .await
        .unwrap();
    let read_a = primary_now(&store, &a.user_id).await;
    // `b` wins; `c` read `a` as primary, and loses.
    store.apply(switch(&b, read_a)).await.unwrap();
    let stale = Err(WriteError::Stale);
    assert_eq!(store.apply(switch(&c, read_a)).await, stale);
    // Believing there is no primary is as stale, for an update and a create.
    assert_eq!(store.apply(switch(&c, None)).await, stale);
    let lost = Change::Create {
        record: record("alice", "d@example.com", false),
        primary: PrimaryChange::Set { previous: None },
        // Room for it: the cap would be refused first.
        max_channels: 10,
    };
    assert_eq!(store.apply(lost).await, stale);
    // The right marker but an outdated version of the primary: stale too.
    let mut outdated = primary_now(&store, &a.user_id).await.unwrap();
    assert_eq!(outdated.id, b.id);
    outdated.version -= 1;
    assert_eq!(store.apply(switch(&c, Some(outdated))).await, stale);
    // Nothing of the lost switches was written.
    assert_eq!(reread(&store, &c).await.version, 1);
    let listed = store.list(&user("alice")).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|x| x.is_primary == (x.record.id == b.id)));
    // With what is primary now, `c` takes over.
    let now = primary_now(&store, &c.user_id).await;
    store.apply(switch(&c, now)).await.unwrap();
    only_primary(&store, c.id).await;
}

/// Two switches that read the same primary race: one wins, the other is stale, and exactly
/// one channel is primary.
pub async fn racing_switches_away_from_one_primary_admit_exactly_one(store: Store) {
    let a = create(&store, &record("alice", "a@example.com", false), true)
        .await
        .unwrap();
    let mut others = Vec::new();
    for i in 0..2 {
        let r = record("alice", &format!("o{i}@example.com"), false);
        others.push(create(&store, &r, false).await.unwrap());
    }
    let previous = primary_now(&store, &a.user_id).await;
    assert_eq!(race_to_primary(&store, others, previous).await, 1);
    let list = store.list(&user("alice")).await.unwrap();
    assert_eq!(list.iter().filter(|c| c.is_primary).count(), 1);
    // `a` was demoted exactly once.
    assert_eq!(reread(&store, &a).await.version, 2);
}

pub async fn racing_writes_against_one_version_let_exactly_one_through(store: Store) {
    // The attempt counter relies on this: every guess is a write conditioned on the version
    // it was checked against.
    let r = create(&store, &record("alice", "a@example.com", false), false)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (store, r) = (store.clone(), r.clone());
            tokio::spawn(async move {
                let mut after = r.clone();
                after.verification = Some(Verification {
                    attempts: 1,
                    ..link(4, now_millis() + 60_000)
                });
                let change = Change::Update {
                    before: r,
                    after,
                    primary: PrimaryChange::Keep,
                    was_primary: false,
                    send_log: None,
                };
                store.apply(change).await
            })
        })
        .collect();
    assert_eq!(through(tasks).await, 1);
}

/// Runs the whole suite: `$name` is a module name, `$make` an async expression giving a fresh store.
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;
            $crate::conformance_suite!(@tests $make;
                created_channels_read_back_with_version_one,
                one_value_per_user_and_one_auth_channel_per_value,
                the_per_user_limit_holds,
                a_stale_version_writes_nothing,
                value_and_auth_claims_follow_updates_and_deletes,
                one_primary_per_user,
                a_moved_primary_marker_makes_the_write_stale,
                a_channel_created_with_a_link_is_indexed,
                links_are_indexed_replaced_and_removed,
                redeeming_a_link_verifies_once_and_expiry_is_checked_on_read,
                the_send_log_admits_up_to_the_cap_and_releases,
                the_cooldown_holds_per_address_across_users,
                racing_creates_of_one_auth_value_admit_exactly_one,
                racing_primary_switches_leave_one_primary,
                making_a_channel_primary_demotes_the_previous_one,
                a_write_of_the_demoted_channel_read_before_is_stale,
                a_switch_that_read_an_outdated_primary_is_stale,
                racing_switches_away_from_one_primary_admit_exactly_one,
                racing_writes_against_one_version_let_exactly_one_through
            );
        }
    };
    (@tests $make:expr; $($test:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let store = $make.await;
                $crate::conformance::$test(store).await;
            }
        )*
    };
}
