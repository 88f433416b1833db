#![allow(clippy::unwrap_used)]

use super::*;
use crate::domain::Strategy;
use crate::domain::channel::test_support::{link, record};
use crate::store::{PrimaryAsRead, SendLogChange};

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

/// `r` written unchanged with `primary`, read as primary or not.
fn marked(r: &ChannelRecord, primary: PrimaryChange, was_primary: bool) -> Change {
    Change::Update {
        before: r.clone(),
        after: r.clone(),
        primary,
        was_primary,
        send_log: None,
    }
}

#[test]
fn create_claims_its_value_counts_and_writes_version_one() {
    let mut r = record(None, false);
    r.version = 0;
    let e = effects(&Change::Create {
        record: r.clone(),
        primary: PrimaryChange::Keep,
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
        primary: PrimaryChange::Set { previous: None },
        max_channels: 50,
    });
    assert_eq!(e.claim_auth, Some(r.value.clone()));
    assert_eq!(e.primary, PrimaryEffect::Set { previous: None });
    assert_eq!(e.demote, None);
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
        (
            PrimaryChange::Set { previous: None },
            false,
            PrimaryEffect::Set { previous: None },
            true,
        ),
        (
            PrimaryChange::Set { previous: None },
            true,
            PrimaryEffect::Set { previous: None },
            true,
        ),
        (PrimaryChange::Clear, true, PrimaryEffect::Remove, false),
        (PrimaryChange::Clear, false, PrimaryEffect::Keep, false),
    ];
    for (primary, was_primary, effect, is_primary) in cases {
        let e = effects(&marked(&r, primary, was_primary));
        assert_eq!(e.primary, effect, "{primary:?} was_primary={was_primary}");
        assert_eq!(e.written.map(|w| w.is_primary), Some(is_primary));
    }
}

#[test]
fn making_a_channel_primary_demotes_the_primary_read_at_its_version() {
    let r = record(None, false);
    let p = PrimaryAsRead {
        id: ChannelId::new_random(),
        version: 7,
    };
    let set = PrimaryChange::Set { previous: Some(p) };
    let e = effects(&marked(&r, set, false));
    // The marker must still name `p`, and `p` must still be at the version read.
    assert_eq!(
        e.primary,
        PrimaryEffect::Set {
            previous: Some(p.id)
        }
    );
    assert_eq!(e.demote, Some(p));
    assert_eq!(e.written.map(|w| w.is_primary), Some(true));
    // A create made primary demotes the same way.
    let mut new = record(None, false);
    new.version = 0;
    let e = effects(&Change::Create {
        record: new,
        primary: set,
        max_channels: 50,
    });
    assert_eq!(e.demote, Some(p));
    assert_eq!(e.written.map(|w| w.is_primary), Some(true));
}

#[test]
fn only_a_set_demotes_and_never_the_channel_itself() {
    let r = record(None, false);
    let itself = PrimaryAsRead {
        id: r.id,
        version: r.version,
    };
    let e = effects(&marked(
        &r,
        PrimaryChange::Set {
            previous: Some(itself),
        },
        true,
    ));
    assert_eq!(
        e.primary,
        PrimaryEffect::Set {
            previous: Some(r.id)
        }
    );
    assert_eq!(e.demote, None, "a transaction may not write one item twice");
    for (primary, was_primary) in [
        (PrimaryChange::Keep, true),
        (PrimaryChange::Keep, false),
        (PrimaryChange::Clear, true),
        (PrimaryChange::Clear, false),
    ] {
        let e = effects(&marked(&r, primary, was_primary));
        assert_eq!(e.demote, None, "{primary:?}");
    }
    let e = effects(&Change::Delete {
        before: r.clone(),
        was_primary: true,
    });
    assert_eq!(e.demote, None);
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
