//! Lifecycle events in local mode: what the embedded store committed (each channel item and
//! primary marker, before and after, as a DynamoDB stream would show them) mapped by the same
//! `contact_channels::events` functions as the Lambda consumer, and appended to
//! `DATA_DIR/events.jsonl` for `/_dev/events` and `/_dev/events.json`. A switch of the primary
//! also writes the demoted channel (its version only, here); as on the stream, that write
//! changes nothing but `is_primary` and maps to no event.

use std::cell::RefCell;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::Value;

use contact_channels::domain::channel::{ChannelRecord, StoredChannel};
use contact_channels::domain::{ChannelId, EmailAddress, UserId, now_millis};
use contact_channels::events::{Commit, Detail, SOURCE, Written};
use contact_channels::store::StoreError;
use contact_channels::store::kv::{ChannelKey, KvTables, UserMeta};

use crate::outbox::JsonLines;

/// `events.jsonl` keeps about its newest this many bytes (over a thousand events): what
/// `/_dev/events` shows, and a data directory that does not grow with every write.
pub const EVENTS_MAX_BYTES: u64 = 1 << 20;

/// [`KvTables`] that notes every channel and meta write of a transaction, with what it
/// replaced: the local counterpart of the table's stream.
pub struct Recording<'a, T> {
    inner: &'a mut T,
    /// The user's primary before the transaction first wrote the meta item.
    primary_before: Option<Option<ChannelId>>,
    /// What was written, in order.
    pub committed: Vec<Written>,
    /// The channel and the meta as this transaction last read or wrote them. A change reads
    /// both to check its conditions just before it writes; noting the write needs them again,
    /// and reading them twice cost two lookups and two JSON decodes per write.
    seen_channel: RefCell<Option<(ChannelKey, Option<ChannelRecord>)>>,
    seen_meta: RefCell<Option<(UserId, UserMeta)>>,
}

impl<'a, T: KvTables> Recording<'a, T> {
    /// Records the writes made through it to `inner`.
    pub fn new(inner: &'a mut T) -> Self {
        Recording {
            inner,
            primary_before: None,
            committed: Vec::new(),
            seen_channel: RefCell::new(None),
            seen_meta: RefCell::new(None),
        }
    }

    /// The channel as stored now, and whether it is primary before and after this transaction.
    /// Takes the channel out of what was seen: it is about to be written.
    fn channel_now(
        &self,
        user: &UserId,
        id: ChannelId,
    ) -> Result<(Option<ChannelRecord>, bool, bool), StoreError> {
        let now = self.user_meta(user)?.primary;
        let before = self.primary_before.unwrap_or(now);
        let seen = self.seen_channel.borrow_mut().take();
        let record = match seen {
            Some(((u, i), record)) if u == *user && i == id => record,
            _ => self.inner.channel(user, id)?,
        };
        Ok((record, before == Some(id), now == Some(id)))
    }

    fn note_channel(
        &mut self,
        user: &UserId,
        id: ChannelId,
        after: Option<&ChannelRecord>,
    ) -> Result<(), StoreError> {
        let (before, was_primary, is_primary) = self.channel_now(user, id)?;
        self.committed.push(Written::Channel {
            before: before.map(|record| {
                Box::new(StoredChannel {
                    record,
                    is_primary: was_primary,
                })
            }),
            after: after.map(|record| {
                Box::new(StoredChannel {
                    record: record.clone(),
                    is_primary,
                })
            }),
        });
        Ok(())
    }
}

impl<T: KvTables> KvTables for Recording<'_, T> {
    fn channel(&self, user: &UserId, id: ChannelId) -> Result<Option<ChannelRecord>, StoreError> {
        let record = self.inner.channel(user, id)?;
        *self.seen_channel.borrow_mut() = Some(((user.clone(), id), record.clone()));
        Ok(record)
    }
    // Both leave nothing seen of the channel (`channel_now` took it).
    fn put_channel(&mut self, record: &ChannelRecord) -> Result<(), StoreError> {
        self.note_channel(&record.user_id, record.id, Some(record))?;
        self.inner.put_channel(record)
    }
    fn remove_channel(&mut self, user: &UserId, id: ChannelId) -> Result<(), StoreError> {
        self.note_channel(user, id, None)?;
        self.inner.remove_channel(user, id)
    }
    fn value_claim(
        &self,
        user: &UserId,
        value: &EmailAddress,
    ) -> Result<Option<ChannelId>, StoreError> {
        self.inner.value_claim(user, value)
    }
    fn set_value_claim(
        &mut self,
        user: &UserId,
        value: &EmailAddress,
        holder: Option<ChannelId>,
    ) -> Result<(), StoreError> {
        self.inner.set_value_claim(user, value, holder)
    }
    fn auth_claim(&self, value: &EmailAddress) -> Result<Option<ChannelKey>, StoreError> {
        self.inner.auth_claim(value)
    }
    fn set_auth_claim(
        &mut self,
        value: &EmailAddress,
        holder: Option<&ChannelKey>,
    ) -> Result<(), StoreError> {
        self.inner.set_auth_claim(value, holder)
    }
    fn user_meta(&self, user: &UserId) -> Result<UserMeta, StoreError> {
        if let Some((u, meta)) = &*self.seen_meta.borrow()
            && u == user
        {
            return Ok(meta.clone());
        }
        let meta = self.inner.user_meta(user)?;
        *self.seen_meta.borrow_mut() = Some((user.clone(), meta.clone()));
        Ok(meta)
    }
    fn set_user_meta(&mut self, user: &UserId, meta: &UserMeta) -> Result<(), StoreError> {
        let before = self.user_meta(user)?.primary;
        self.primary_before.get_or_insert(before);
        if before != meta.primary {
            self.committed.push(Written::Primary {
                user: user.clone(),
                before,
                after: meta.primary,
            });
        }
        self.inner.set_user_meta(user, meta)?;
        *self.seen_meta.borrow_mut() = Some((user.clone(), meta.clone()));
        Ok(())
    }
    fn link(&self, digest_hex: &str) -> Result<Option<ChannelKey>, StoreError> {
        self.inner.link(digest_hex)
    }
    fn set_link(
        &mut self,
        digest_hex: &str,
        holder: Option<&ChannelKey>,
    ) -> Result<(), StoreError> {
        self.inner.set_link(digest_hex, holder)
    }
    fn send_log(&self, address: &EmailAddress) -> Result<Vec<i64>, StoreError> {
        self.inner.send_log(address)
    }
    fn set_send_log(&mut self, address: &EmailAddress, log: &[i64]) -> Result<(), StoreError> {
        self.inner.set_send_log(address, log)
    }
}

/// `DATA_DIR/events.jsonl`: one event a line, in commit order, in the envelope EventBridge
/// delivers (`id`, `source`, `detail-type`, `detail`).
#[derive(Clone)]
pub struct EventLog {
    max_attempts: u32,
    /// Held from before a write transaction begins until its events are appended, so the file
    /// has them in commit order.
    order: Arc<Mutex<Order>>,
}

/// An event as EventBridge delivers it (the fields a rule or target sees).
#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    source: &'a str,
    #[serde(rename = "detail-type")]
    detail_type: &'a str,
    detail: &'a Detail,
}

/// The file and the count of commits so far (for the commit ids), under one lock.
pub struct Order {
    commits: u64,
    file: JsonLines,
}

impl EventLog {
    /// The log in `dir`; `max_attempts` is `MAX_CODE_ATTEMPTS`.
    pub fn open(dir: &Path, max_attempts: u32) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let file = JsonLines::open(dir.join("events.jsonl"), EVENTS_MAX_BYTES)?;
        Ok(EventLog {
            max_attempts,
            order: Arc::new(Mutex::new(Order { commits: 0, file })),
        })
    }

    /// Taken before a write transaction: commits and their events then keep one order.
    pub fn order(&self) -> MutexGuard<'_, Order> {
        self.order.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends the events of one committed group, a commit id per change. A failure is logged,
    /// not returned: the changes themselves are committed.
    ///
    /// Written with one `write` and no fsync: the lines are in the kernel's cache before the
    /// requests are answered, so they survive the server being killed; a machine crash may
    /// lose the last ones (the store has the state they describe, and a line torn there is
    /// skipped). Lambda's events come from the table's stream instead, which keeps them.
    pub fn append(&self, order: &mut Order, committed: &[Vec<Written>]) {
        let mut lines = String::new();
        for written in committed.iter().filter(|w| !w.is_empty()) {
            order.commits += 1;
            let commit = Commit {
                id: format!("local-{}-{}", now_millis(), order.commits),
                at_millis: now_millis(),
                max_attempts: self.max_attempts,
            };
            for event in written.iter().flat_map(|c| c.events(&commit)) {
                let envelope = Envelope {
                    id: &event.detail.event_id,
                    source: SOURCE,
                    detail_type: event.detail_type.as_str(),
                    detail: &event.detail,
                };
                lines.push('\n');
                // Straight to text: through a `Value` it cost a tenth of a write's CPU.
                match serde_json::to_string(&envelope) {
                    Ok(line) => lines.push_str(&line),
                    Err(e) => tracing::warn!(error = %e, "cannot encode an event"),
                }
            }
        }
        if lines.is_empty() {
            return;
        }
        if let Err(e) = order.file.append(&lines) {
            tracing::warn!(error = %e, "cannot append to events.jsonl");
        }
    }

    /// Every event kept, newest first.
    pub async fn list(&self) -> std::io::Result<Vec<Value>> {
        let path = self.order().file.path.clone();
        crate::outbox::read_jsonl_newest_first(&path).await
    }
}
