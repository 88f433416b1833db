#![allow(clippy::unwrap_used)]

use super::*;
use crate::domain::Strategy;
use crate::domain::channel::test_support::{link, record};
use crate::store::SendLogChange;

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn code(expires: i64) -> crate::domain::channel::Verification {
    let mut v = link(9, expires, false);
    v.strategy = Strategy::EmailCode;
    v
}

fn update(before: &ChannelRecord, after: &ChannelRecord) -> Change {
    Change::Update {
        before: before.clone(),
        after: after.clone(),
        primary: PrimaryChange::Keep,
        was_primary: false,
        send_log: None,
    }
}

#[test]
fn create_claims_its_value_counts_and_writes_version_one() {
    let mut r = record(None, false);
    r.version = 0;
    let e = effects(&Change::Create {
        record: r.clone(),
        make_primary: false,
        max_channels: 50,
    });
    assert_eq!((e.user.clone(), e.id), (r.user_id.clone(), r.id));
    assert_eq!(e.claim_value, Some(r.value.clone()));
    assert_eq!(
        (e.release_value, e.claim_auth, e.release_auth),
        (None, None, None)
    );
    assert_eq!(e.count, CountChange::Increment { max: 50 });
    assert_eq!(e.primary, PrimaryEffect::Keep);
    let ChannelWrite::Put {
        record: written,
        expect,
    } = &e.channel
    else {
        panic!("a create puts");
    };
    assert_eq!((written.version, *expect), (1, Expect::Absent));
    assert_eq!(e.written.as_ref().map(|w| w.is_primary), Some(false));
    assert_eq!((e.index_link, e.unindex_link), (None, None));
}

#[test]
fn create_for_auth_as_primary_with_a_link_claims_auth_sets_primary_and_indexes() {
    let mut r = record(Some(link(3, 500, false)), false);
    r.used_for_auth = true;
    let e = effects(&Change::Create {
        record: r.clone(),
        make_primary: true,
        max_channels: 50,
    });
    assert_eq!(e.claim_auth, Some(r.value.clone()));
    assert_eq!(e.primary, PrimaryEffect::Set);
    assert_eq!(e.written.map(|w| w.is_primary), Some(true));
    let entry = e.index_link.unwrap();
    assert_eq!(entry.digest_hex, r.link_digest_hex().unwrap());
    assert_eq!(entry.expires_at_millis, 500);
}

#[test]
fn a_value_change_on_an_auth_channel_moves_both_claims() {
    let mut before = record(None, true);
    before.used_for_auth = true;
    let mut after = before.clone();
    after.value = email("b@example.com");
    let e = effects(&update(&before, &after));
    assert_eq!(e.claim_value, Some(after.value.clone()));
    assert_eq!(e.release_value, Some(before.value.clone()));
    assert_eq!(e.claim_auth, Some(after.value.clone()));
    assert_eq!(e.release_auth, Some(before.value.clone()));
    assert_eq!(e.count, CountChange::Keep);
    let ChannelWrite::Put { record, expect } = &e.channel else {
        panic!("an update puts");
    };
    assert_eq!((record.version, *expect), (2, Expect::Version(1)));
}

#[test]
fn used_for_auth_on_and_off_claims_and_releases_only_auth() {
    let off = record(None, false);
    let mut on = off.clone();
    on.used_for_auth = true;
    let e = effects(&update(&off, &on));
    assert_eq!(
        (e.claim_auth, e.release_auth),
        (Some(on.value.clone()), None)
    );
    assert_eq!(
        (e.claim_value.clone(), e.release_value.clone()),
        (None, None)
    );
    let e = effects(&update(&on, &off));
    assert_eq!(
        (e.claim_auth, e.release_auth),
        (None, Some(on.value.clone()))
    );
}

#[test]
fn an_unchanged_record_claims_and_indexes_nothing() {
    let mut r = record(Some(link(1, 100, false)), false);
    r.used_for_auth = true;
    let e = effects(&update(&r, &r));
    assert_eq!(
        (e.claim_value, e.release_value, e.claim_auth, e.release_auth),
        (None, None, None, None)
    );
    assert_eq!((e.index_link, e.unindex_link), (None, None));
}

#[test]
fn primary_changes_map_with_what_was_read() {
    let r = record(None, false);
    let cases = [
        (PrimaryChange::Keep, false, PrimaryEffect::Keep, false),
        (PrimaryChange::Keep, true, PrimaryEffect::Keep, true),
        (PrimaryChange::Set, false, PrimaryEffect::Set, true),
        (PrimaryChange::Set, true, PrimaryEffect::Set, true),
        (PrimaryChange::Clear, true, PrimaryEffect::Remove, false),
        (PrimaryChange::Clear, false, PrimaryEffect::Keep, false),
    ];
    for (primary, was_primary, effect, is_primary) in cases {
        let e = effects(&Change::Update {
            before: r.clone(),
            after: r.clone(),
            primary,
            was_primary,
            send_log: None,
        });
        assert_eq!(e.primary, effect, "{primary:?} was_primary={was_primary}");
        assert_eq!(e.written.map(|w| w.is_primary), Some(is_primary));
    }
}

#[test]
fn delete_releases_everything_and_guards_the_primary_marker_both_ways() {
    let mut r = record(Some(link(4, 100, false)), false);
    r.used_for_auth = true;
    for (was_primary, effect) in [
        (true, PrimaryEffect::Remove),
        (false, PrimaryEffect::AssertNot),
    ] {
        let e = effects(&Change::Delete {
            before: r.clone(),
            was_primary,
        });
        assert_eq!(e.release_value, Some(r.value.clone()));
        assert_eq!(e.release_auth, Some(r.value.clone()));
        assert_eq!((e.claim_value, e.claim_auth), (None, None));
        assert_eq!(e.count, CountChange::Decrement);
        assert_eq!(e.channel, ChannelWrite::Delete { version: 1 });
        assert_eq!(e.primary, effect);
        assert_eq!(e.unindex_link, r.link_digest_hex());
        assert_eq!((e.index_link, e.written), (None, None));
    }
}

#[test]
fn the_link_index_follows_the_current_link() {
    let none = record(None, false);
    let with = |v| {
        let mut r = none.clone();
        r.verification = v;
        r
    };
    let (code, link1, link2) = (
        with(Some(code(100))),
        with(Some(link(1, 100, false))),
        with(Some(link(2, 200, false))),
    );
    let used1 = with(Some(link(1, 100, true)));
    let hex = |r: &ChannelRecord| r.link_digest_hex();
    // code → link: index it.
    let e = effects(&update(&code, &link1));
    assert_eq!(
        (e.unindex_link, e.index_link.map(|l| l.digest_hex)),
        (None, hex(&link1))
    );
    // link → newer link: the old one goes, the new one comes.
    let e = effects(&update(&link1, &link2));
    assert_eq!(
        (e.unindex_link, e.index_link.map(|l| l.digest_hex)),
        (hex(&link1), hex(&link2))
    );
    // link → the same link, used: the index keeps it (a second click answers "used").
    let e = effects(&update(&link1, &used1));
    assert_eq!((e.unindex_link, e.index_link), (None, None));
    // link → code: the link leaves the index.
    let e = effects(&update(&link1, &code));
    assert_eq!((e.unindex_link, e.index_link), (hex(&link1), None));
}

#[test]
fn the_send_log_change_is_passed_through() {
    let r = record(None, false);
    let log = SendLogChange::Admit {
        address: r.value.clone(),
        at: 7,
        limits: crate::rules::send_limits::SendLimits {
            cap: 3,
            cooldown_millis: 30_000,
        },
    };
    let e = effects(&Change::Update {
        before: r.clone(),
        after: r.clone(),
        primary: PrimaryChange::Keep,
        was_primary: false,
        send_log: Some(log.clone()),
    });
    assert_eq!(e.send_log, Some(log));
}
