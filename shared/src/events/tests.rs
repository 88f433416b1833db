#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;
use crate::domain::EmailAddress;
use crate::domain::channel::test_support::{link, record};
use crate::domain::channel::{ChannelRecord, Verification};

const MAX: u32 = 5;

fn commit(id: &str) -> Commit {
    Commit {
        id: id.to_owned(),
        at_millis: 1_000,
        max_attempts: MAX,
    }
}

fn stored(record: ChannelRecord, is_primary: bool) -> StoredChannel {
    StoredChannel { record, is_primary }
}

fn channel() -> StoredChannel {
    stored(record(None, false), false)
}

fn code(digest: u8, attempts: u32) -> Verification {
    let mut v = link(digest, 10_000, false);
    v.strategy = Strategy::EmailCode;
    v.attempts = attempts;
    v
}

/// The events of a change, as (type, detail JSON).
fn map(before: &StoredChannel, after: &StoredChannel) -> Vec<(&'static str, Value)> {
    pairs(channel_events(Some(before), Some(after), &commit("seq-1")))
}

fn pairs(events: Vec<Event>) -> Vec<(&'static str, Value)> {
    events
        .into_iter()
        .map(|e| {
            let detail: Value = serde_json::from_str(&e.detail_json()).unwrap();
            assert_eq!(detail["type"], e.detail_type.as_str());
            (e.detail_type.as_str(), detail)
        })
        .collect()
}

fn types(events: &[(&'static str, Value)]) -> Vec<&'static str> {
    events.iter().map(|(t, _)| *t).collect()
}

#[test]
fn a_create_is_created_with_the_channel_in_its_public_shape() {
    let c = stored(record(None, false), true);
    let events = pairs(channel_events(None, Some(&c), &commit("seq-1")));
    assert_eq!(types(&events), ["contact_channel.created"]);
    let d = &events[0].1;
    assert_eq!(d["user_id"], "u");
    assert_eq!(d["contact_channel_id"], c.record.id.to_string());
    assert_eq!(d["occurred_at_millis"], 1_000);
    let body = serde_json::to_value(ChannelBody::render(&c, 1_000, MAX)).unwrap();
    assert_eq!(d["channel"], body, "the same JSON as the API answers");
    assert_eq!(d["channel"]["is_primary"], true);
    assert!(d.get("previous").is_none() && d.get("changed_fields").is_none());
}

#[test]
fn a_delete_is_deleted_with_the_channel_as_it_was_last() {
    let c = channel();
    let events = pairs(channel_events(Some(&c), None, &commit("seq-1")));
    assert_eq!(types(&events), ["contact_channel.deleted"]);
    assert_eq!(events[0].1["channel"]["value"], "a@example.com");
}

#[test]
fn nothing_before_and_after_is_no_event() {
    assert!(channel_events(None, None, &commit("seq-1")).is_empty());
}

#[test]
fn a_write_that_changes_no_public_field_is_no_event() {
    let before = channel();
    let mut after = before.clone();
    after.record.version += 1;
    assert!(map(&before, &after).is_empty());
    // Becoming primary writes the channel too, but the event comes from the meta item.
    after.is_primary = true;
    assert!(map(&before, &after).is_empty());
}

#[test]
fn the_demotion_of_the_previous_primary_is_no_event() {
    // What the store writes to A when B becomes primary: its flag off, its version up.
    let before = stored(record(Some(link(1, 10_000, true)), true), true);
    let mut after = before.clone();
    after.record.version += 1;
    after.is_primary = false;
    assert!(map(&before, &after).is_empty());
    // But a demoted channel's own change in the same write would still be reported, shown
    // not primary.
    after.record.used_for_auth = !before.record.used_for_auth;
    let events = map(&before, &after);
    assert_eq!(types(&events), ["contact_channel.updated"]);
    assert_eq!(events[0].1["changed_fields"], json!(["used_for_auth"]));
    assert_eq!(events[0].1["channel"]["is_primary"], false);
}

#[test]
fn an_update_of_the_primary_shows_it_primary_from_its_own_flag() {
    let before = stored(record(None, false), true);
    let mut after = before.clone();
    after.record.version += 1;
    after.record.value = EmailAddress::parse("b@example.com").unwrap();
    let events = map(&before, &after);
    assert_eq!(types(&events), ["contact_channel.updated"]);
    assert_eq!(events[0].1["channel"]["is_primary"], true);
}

#[test]
fn a_value_change_is_updated_with_the_field_and_its_previous_value() {
    let before = channel();
    let mut after = before.clone();
    after.record.value = EmailAddress::parse("b@example.com").unwrap();
    let events = map(&before, &after);
    assert_eq!(types(&events), ["contact_channel.updated"]);
    assert_eq!(events[0].1["changed_fields"], json!(["value"]));
    assert_eq!(events[0].1["previous"], json!({"value": "a@example.com"}));
    assert_eq!(events[0].1["channel"]["value"], "b@example.com");
}

#[test]
fn a_used_for_auth_change_is_updated() {
    let before = channel();
    let mut after = before.clone();
    after.record.used_for_auth = true;
    let events = map(&before, &after);
    assert_eq!(types(&events), ["contact_channel.updated"]);
    assert_eq!(events[0].1["changed_fields"], json!(["used_for_auth"]));
    assert_eq!(events[0].1["previous"], json!({"used_for_auth": false}));
}

#[test]
fn a_value_change_on_a_verified_channel_is_updated_then_unverified() {
    let before = stored(record(Some(link(1, 10_000, true)), true), false);
    let mut after = before.clone();
    after.record.value = EmailAddress::parse("b@example.com").unwrap();
    after.record.used_for_auth = true;
    after.record.is_verified = false;
    after.record.verification = None;
    let events = map(&before, &after);
    assert_eq!(
        types(&events),
        ["contact_channel.updated", "contact_channel.unverified"]
    );
    assert_eq!(
        events[0].1["changed_fields"],
        json!(["value", "used_for_auth"])
    );
    assert_eq!(events[1].1["previous"], json!({"is_verified": true}));
    assert_eq!(
        events[1].1["channel"]["verification"]["status"],
        "unverified"
    );
}

#[test]
fn proving_a_code_is_verified() {
    let before = stored(record(Some(code(1, 2)), false), false);
    let mut after = before.clone();
    after.record.is_verified = true;
    after.record.verification.as_mut().unwrap().used = true;
    let events = map(&before, &after);
    assert_eq!(types(&events), ["contact_channel.verified"]);
    assert_eq!(events[0].1["previous"], json!({"is_verified": false}));
    assert_eq!(events[0].1["channel"]["verification"]["status"], "verified");
}

#[test]
fn a_server_unverify_is_unverified() {
    let before = stored(record(None, true), false);
    let mut after = before.clone();
    after.record.is_verified = false;
    assert_eq!(types(&map(&before, &after)), ["contact_channel.unverified"]);
}

#[test]
fn a_send_is_verification_sent_with_strategy_and_expiry_but_no_secret() {
    let before = channel();
    let mut after = before.clone();
    after.record.verification = Some(code(7, 0));
    after.record.last_sent_at_millis = Some(900);
    let events = map(&before, &after);
    assert_eq!(types(&events), ["verification.sent"]);
    assert_eq!(
        events[0].1["verification"],
        json!({"strategy": "email_code", "expires_at_millis": 10_000, "attempts": 0})
    );
    let text = events[0].1.to_string();
    assert!(!text.contains(&"07".repeat(32)), "no digest in {text}");
    assert_eq!(events[0].1["channel"]["verification"]["status"], "pending");
}

#[test]
fn a_resend_replacing_a_code_is_verification_sent() {
    let mut before = stored(record(Some(code(1, 3)), false), false);
    before.record.last_sent_at_millis = Some(100);
    let mut after = before.clone();
    after.record.verification = Some(link(2, 20_000, false));
    after.record.last_sent_at_millis = Some(900);
    let events = map(&before, &after);
    assert_eq!(types(&events), ["verification.sent"]);
    assert_eq!(events[0].1["verification"]["strategy"], "email_link");
}

#[test]
fn the_rollback_of_a_refused_send_is_no_event() {
    let mut before = stored(record(Some(code(2, 0)), false), false);
    before.record.last_sent_at_millis = Some(900);
    let mut after = before.clone();
    after.record.verification = Some(code(1, 1));
    after.record.last_sent_at_millis = Some(100);
    assert!(map(&before, &after).is_empty());
    after.record.verification = None;
    after.record.last_sent_at_millis = None;
    assert!(map(&before, &after).is_empty());
}

#[test]
fn a_wrong_guess_that_leaves_guesses_is_no_event() {
    let before = stored(record(Some(code(1, 3)), false), false);
    let mut after = before.clone();
    after.record.verification.as_mut().unwrap().attempts = 4;
    assert!(map(&before, &after).is_empty());
}

#[test]
fn the_last_wrong_guess_is_verification_failed() {
    let before = stored(record(Some(code(1, MAX - 1)), false), false);
    let mut after = before.clone();
    after.record.verification.as_mut().unwrap().attempts = MAX;
    let events = map(&before, &after);
    assert_eq!(types(&events), ["verification.failed"]);
    assert_eq!(events[0].1["verification"]["attempts"], MAX);
    assert_eq!(events[0].1["channel"]["verification"]["status"], "failed");
    // Guesses past the burn count no more.
    let mut later = after.clone();
    later.record.verification.as_mut().unwrap().attempts = MAX + 1;
    assert!(map(&after, &later).is_empty());
}

#[test]
fn a_primary_move_is_primary_changed_with_the_previous_primary() {
    let (a, b) = (ChannelId::new_random(), ChannelId::new_random());
    let user = UserId::parse("u").unwrap();
    let events = pairs(primary_events(&user, Some(a), Some(b), &commit("seq-9")));
    assert_eq!(types(&events), ["contact_channel.primary_changed"]);
    let d = &events[0].1;
    assert_eq!(d["contact_channel_id"], b.to_string());
    assert_eq!(
        d["previous"],
        json!({"primary_contact_channel_id": a.to_string()})
    );
    assert!(d.get("channel").is_none());

    let first = pairs(primary_events(&user, None, Some(a), &commit("seq-9")));
    assert_eq!(
        first[0].1["previous"],
        json!({"primary_contact_channel_id": null})
    );
    let none = pairs(primary_events(&user, Some(a), None, &commit("seq-9")));
    assert_eq!(none[0].1["contact_channel_id"], Value::Null);
    assert!(primary_events(&user, Some(a), Some(a), &commit("seq-9")).is_empty());
    assert!(primary_events(&user, None, None, &commit("seq-9")).is_empty());
}

#[test]
fn event_ids_are_stable_for_a_commit_and_differ_between_commits_and_types() {
    let before = stored(record(Some(link(1, 10_000, true)), true), false);
    let mut after = before.clone();
    after.record.value = EmailAddress::parse("b@example.com").unwrap();
    after.record.is_verified = false;
    let ids = |seq: &str| -> Vec<String> {
        channel_events(Some(&before), Some(&after), &commit(seq))
            .into_iter()
            .map(|e| e.detail.event_id)
            .collect()
    };
    assert_eq!(ids("seq-1"), ids("seq-1"), "a redelivery has the same ids");
    assert_ne!(ids("seq-1")[0], ids("seq-1")[1]);
    assert_ne!(ids("seq-1"), ids("seq-2"));
    assert_eq!(ids("seq-1")[0].len(), 36);
}

#[test]
fn every_type_has_a_distinct_dotted_name() {
    let names: std::collections::HashSet<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(names.len(), EventType::ALL.len());
    assert!(names.iter().all(|n| n.contains('.')));
}
