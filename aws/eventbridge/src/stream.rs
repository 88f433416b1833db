//! A batch of DynamoDB stream records (NEW_AND_OLD_IMAGES) decoded into the events each record
//! means, with `contact_channels::events` — the mapping the local server uses too.
//!
//! Records are decoded one by one from the raw JSON, so a malformed record is reported as that
//! record's failure instead of failing the whole invocation. Decoding stops at the first such
//! record: Lambda retries a stream batch from the lowest reported sequence number, so what
//! follows it comes again anyway, and publishing it now would break the per-channel order.

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use cc_aws::dynamo::{ItemImage, KeyKind, decode_image, key_kind};
use contact_channels::events::{Commit, Event, Written};
use contact_channels::store::StoreError;

/// The events of one stream record.
#[derive(Debug)]
pub struct RecordEvents {
    /// The record's sequence number: its `itemIdentifier` in `batchItemFailures`.
    pub sequence_number: String,
    /// What it means, in order (often nothing: a count change, a send-log write).
    pub events: Vec<Event>,
}

/// A decoded batch: the events of every record up to the first that could not be decoded.
#[derive(Debug, Default)]
pub struct Batch {
    /// The records decoded, in stream order.
    pub records: Vec<RecordEvents>,
    /// The sequence number of the first record that could not be decoded ("" when it had
    /// none: Lambda then retries the whole batch).
    pub failed: Option<String>,
}

struct Decoded {
    sequence_number: String,
    commit_at_millis: i64,
    /// None for items events are not made from.
    written: Option<Written>,
}

fn sdk_item(item: serde_dynamo::Item) -> HashMap<String, AttributeValue> {
    item.into()
}

fn image(kind: KeyKind, item: serde_dynamo::Item) -> Result<Option<ItemImage>, StoreError> {
    if item.is_empty() {
        return Ok(None);
    }
    decode_image(kind, &sdk_item(item)).map(Some)
}

fn decode_record(raw: &Value) -> Result<Decoded, StoreError> {
    let record: EventRecord = serde_json::from_value(raw.clone()).map_err(StoreError::new)?;
    let stream = record.change;
    let sequence_number = stream
        .sequence_number
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| StoreError::new("record without a sequence number"))?;
    let commit_at_millis = stream.approximate_creation_date_time.timestamp_millis();
    let written = match key_kind(&sdk_item(stream.keys))? {
        None => None,
        Some(kind) => {
            let before = image(kind, stream.old_image)?;
            let after = image(kind, stream.new_image)?;
            match (before, after) {
                (None, None) => return Err(StoreError::new("record without images")),
                (
                    b @ (None | Some(ItemImage::Channel(_))),
                    a @ (None | Some(ItemImage::Channel(_))),
                ) => {
                    // Each image carries its own `is_primary`, written in the same transaction as
                    // the user's marker: exact whatever else the batch holds.
                    let channel = |i: Option<ItemImage>| match i {
                        Some(ItemImage::Channel(stored)) => Some(Box::new(stored)),
                        _ => None,
                    };
                    Some(Written::Channel {
                        before: channel(b),
                        after: channel(a),
                    })
                }
                (b, a) => {
                    let meta = |i: &Option<ItemImage>| match i {
                        Some(ItemImage::Meta { user, primary }) => Some((user.clone(), *primary)),
                        _ => None,
                    };
                    let (b, a) = (meta(&b), meta(&a));
                    let Some(user) = a.as_ref().or(b.as_ref()).map(|(u, _)| u.clone()) else {
                        return Err(StoreError::new("images of different kinds"));
                    };
                    Some(Written::Primary {
                        user,
                        before: b.and_then(|(_, p)| p),
                        after: a.and_then(|(_, p)| p),
                    })
                }
            }
        }
    };
    Ok(Decoded {
        sequence_number,
        commit_at_millis,
        written,
    })
}

/// Decodes `payload` (a DynamoDB stream event) into the events of its records.
pub fn decode_batch(payload: &Value, max_attempts: u32) -> Batch {
    let raw = payload
        .get("Records")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut decoded = Vec::with_capacity(raw.len());
    let mut failed = None;
    for record in raw {
        match decode_record(record) {
            Ok(d) => decoded.push(d),
            Err(_) => {
                let sequence_number = record
                    .pointer("/dynamodb/SequenceNumber")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                // No reason: a decoding error may quote the value, and addresses are never logged.
                tracing::warn!(%sequence_number, "stream record not decodable");
                failed = Some(sequence_number);
                break;
            }
        }
    }
    let records = decoded
        .iter()
        .map(|d| {
            let commit = Commit {
                id: d.sequence_number.clone(),
                at_millis: d.commit_at_millis,
                max_attempts,
            };
            let events = d
                .written
                .as_ref()
                .map(|w| w.events(&commit))
                .unwrap_or_default();
            RecordEvents {
                sequence_number: d.sequence_number.clone(),
                events,
            }
        })
        .collect();
    Batch { records, failed }
}
