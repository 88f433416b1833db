//! An in-memory `ChannelStore` for unit tests of the service (and of anything built on it):
//! one mutex over plain maps, so every `Change` is applied atomically. It keeps the same
//! claims and indexes as the real stores and runs the same conformance suite.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    Change, ChannelStore, PrimaryChange, RedeemError, SendLogChange, StoreError, WriteError,
};
use crate::domain::channel::{ChannelRecord, Digest, StoredChannel};
use crate::domain::{ChannelId, EmailAddress, UserId};
use crate::rules::send_limits::{admit_send, release_send};
use crate::rules::verification::{LinkRefusal, check_link, redeemed};

#[derive(Default)]
struct Tables {
    channels: HashMap<(UserId, ChannelId), ChannelRecord>,
    /// Invariant 1: (user, value) → channel.
    user_values: HashMap<(UserId, EmailAddress), ChannelId>,
    /// Invariant 2: value → (user, channel) of the channel used for auth.
    auth_values: HashMap<EmailAddress, (UserId, ChannelId)>,
    /// Invariants 3 and 7: each user's channel count and primary.
    users: HashMap<UserId, (u32, Option<ChannelId>)>,
    /// Hex digest of a link token → its channel.
    links: HashMap<String, (UserId, ChannelId)>,
    /// Address → send times of the last 24 h.
    send_logs: HashMap<EmailAddress, Vec<i64>>,
}

/// The in-memory store.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Tables>, StoreError> {
        self.tables
            .lock()
            .map_err(|_| StoreError("memory store poisoned".into()))
    }
}

fn link_of(record: Option<&ChannelRecord>) -> Option<String> {
    record
        .and_then(|r| r.verification.as_ref())
        .filter(|v| v.strategy == crate::domain::Strategy::EmailLink)
        .map(|v| v.digest.to_hex())
}

impl Tables {
    fn stored(&self, record: ChannelRecord) -> StoredChannel {
        let is_primary = self.users.get(&record.user_id).and_then(|u| u.1) == Some(record.id);
        StoredChannel { record, is_primary }
    }

    /// Checks every condition of `change` first, then writes: nothing is half-applied.
    fn apply(&mut self, change: Change) -> Result<Option<StoredChannel>, WriteError> {
        let (before, after, primary, send_log) = match change {
            Change::Create {
                record,
                make_primary,
                max_channels,
            } => {
                let user = &record.user_id;
                if self
                    .user_values
                    .contains_key(&(user.clone(), record.value.clone()))
                {
                    return Err(WriteError::ValueExists);
                }
                if record.used_for_auth && self.auth_values.contains_key(&record.value) {
                    return Err(WriteError::AuthTaken);
                }
                if self.users.get(user).map_or(0, |u| u.0) >= max_channels {
                    return Err(WriteError::TooMany);
                }
                let primary = if make_primary {
                    PrimaryChange::Set
                } else {
                    PrimaryChange::Keep
                };
                (None, Some(record), primary, None)
            }
            Change::Update {
                before,
                after,
                primary,
                send_log,
                ..
            } => (Some(before), Some(after), primary, send_log),
            Change::Delete { before, .. } => (Some(before), None, PrimaryChange::Clear, None),
        };
        let Some(subject) = after.as_ref().or(before.as_ref()) else {
            return Err(WriteError::Stale);
        };
        let key = (subject.user_id.clone(), subject.id);
        if let Some(before) = &before {
            match self.channels.get(&key) {
                Some(current) if current.version == before.version => {}
                _ => return Err(WriteError::Stale),
            }
        }
        let value_of = |r: &Option<ChannelRecord>| r.as_ref().map(|r| r.value.clone());
        let (old_value, new_value) = (value_of(&before), value_of(&after));
        if before.is_some()
            && old_value != new_value
            && let Some(new) = &new_value
            && self.user_values.contains_key(&(key.0.clone(), new.clone()))
        {
            return Err(WriteError::ValueExists);
        }
        let auth_of = |r: &Option<ChannelRecord>| {
            r.as_ref()
                .filter(|r| r.used_for_auth)
                .map(|r| r.value.clone())
        };
        let (old_auth, new_auth) = (auth_of(&before), auth_of(&after));
        if old_auth != new_auth
            && let Some(new) = &new_auth
            && self
                .auth_values
                .get(new)
                .is_some_and(|holder| *holder != key)
        {
            return Err(WriteError::AuthTaken);
        }
        let next_log = match &send_log {
            Some(SendLogChange::Admit { address, at, cap }) => {
                let log = self.send_logs.get(address).cloned().unwrap_or_default();
                Some((
                    address.clone(),
                    admit_send(&log, *at, *cap).map_err(WriteError::DailyCap)?,
                ))
            }
            Some(SendLogChange::Release { address, at }) => {
                let log = self.send_logs.get(address).cloned().unwrap_or_default();
                Some((address.clone(), release_send(&log, *at)))
            }
            None => None,
        };

        // Every condition holds: write.
        if old_value != new_value {
            if let Some(old) = old_value {
                self.user_values.remove(&(key.0.clone(), old));
            }
            if let Some(new) = new_value {
                self.user_values.insert((key.0.clone(), new), key.1);
            }
        }
        if old_auth != new_auth {
            if let Some(old) = old_auth
                && self.auth_values.get(&old) == Some(&key)
            {
                self.auth_values.remove(&old);
            }
            if let Some(new) = new_auth {
                self.auth_values.insert(new, key.clone());
            }
        }
        let user = self.users.entry(key.0.clone()).or_default();
        match (&before, &after) {
            (None, Some(_)) => user.0 += 1,
            (Some(_), None) => user.0 = user.0.saturating_sub(1),
            _ => {}
        }
        match primary {
            PrimaryChange::Keep => {}
            PrimaryChange::Set => user.1 = Some(key.1),
            PrimaryChange::Clear if user.1 == Some(key.1) => user.1 = None,
            PrimaryChange::Clear => {}
        }
        let (old_link, new_link) = (link_of(before.as_ref()), link_of(after.as_ref()));
        if old_link != new_link {
            if let Some(old) = old_link {
                self.links.remove(&old);
            }
            if let Some(new) = new_link {
                self.links.insert(new, key.clone());
            }
        }
        if let Some((address, log)) = next_log {
            self.send_logs.insert(address, log);
        }
        match after {
            Some(mut record) => {
                record.version = before.map_or(1, |b| b.version + 1);
                self.channels.insert(key, record.clone());
                Ok(Some(self.stored(record)))
            }
            None => {
                self.channels.remove(&key);
                Ok(None)
            }
        }
    }
}

#[async_trait]
impl ChannelStore for MemoryStore {
    async fn list(&self, user: &UserId) -> Result<Vec<StoredChannel>, StoreError> {
        let tables = self.lock()?;
        let records: Vec<ChannelRecord> = tables
            .channels
            .iter()
            .filter(|((u, _), _)| u == user)
            .map(|(_, r)| r.clone())
            .collect();
        Ok(records.into_iter().map(|r| tables.stored(r)).collect())
    }

    async fn get(&self, user: &UserId, id: ChannelId) -> Result<Option<StoredChannel>, StoreError> {
        let tables = self.lock()?;
        let record = tables.channels.get(&(user.clone(), id)).cloned();
        Ok(record.map(|r| tables.stored(r)))
    }

    async fn apply(&self, change: Change) -> Result<Option<StoredChannel>, WriteError> {
        self.lock()?.apply(change)
    }

    async fn find_link(&self, digest: &Digest) -> Result<Option<(UserId, ChannelId)>, StoreError> {
        Ok(self.lock()?.links.get(&digest.to_hex()).cloned())
    }

    async fn redeem_link(&self, digest: &Digest, now: i64) -> Result<(), RedeemError> {
        let mut tables = self.lock()?;
        let record = tables
            .links
            .get(&digest.to_hex())
            .and_then(|key| tables.channels.get(key))
            .cloned();
        check_link(record.as_ref(), digest, now).map_err(RedeemError::Refused)?;
        let Some(before) = record else {
            return Err(RedeemError::Refused(LinkRefusal::NotFound));
        };
        let change = Change::Update {
            after: redeemed(&before),
            before,
            primary: PrimaryChange::Keep,
            was_primary: false,
            send_log: None,
        };
        tables
            .apply(change)
            .map(|_| ())
            .map_err(|e| RedeemError::Store(StoreError(e.to_string())))
    }

    async fn send_log(&self, address: &EmailAddress) -> Result<Vec<i64>, StoreError> {
        Ok(self
            .lock()?
            .send_logs
            .get(address)
            .cloned()
            .unwrap_or_default())
    }
}
