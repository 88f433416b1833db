//! An in-memory `ChannelStore` for unit tests of the service (and of anything built on it):
//! one mutex over plain maps, so every `Change` is one atomic step of [`super::kv`], the same
//! code the embedded store runs. It passes the same conformance suite as the real stores.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::kv::{self, ChannelKey, KvTables, UserMeta};
use super::{Change, ChannelStore, RedeemError, StoreError, WriteError};
use crate::domain::channel::{ChannelRecord, Digest, StoredChannel};
use crate::domain::{ChannelId, EmailAddress, UserId};

#[derive(Default)]
struct Tables {
    channels: HashMap<ChannelKey, ChannelRecord>,
    user_values: HashMap<(UserId, EmailAddress), ChannelId>,
    auth_values: HashMap<EmailAddress, ChannelKey>,
    users: HashMap<UserId, UserMeta>,
    links: HashMap<String, ChannelKey>,
    send_logs: HashMap<EmailAddress, Vec<i64>>,
}

/// Sets `key` to `value`, or removes it for `None`.
fn set<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: Option<V>) {
    match value {
        Some(value) => map.insert(key, value),
        None => map.remove(&key),
    };
}

impl KvTables for Tables {
    fn channel(&self, user: &UserId, id: ChannelId) -> Result<Option<ChannelRecord>, StoreError> {
        Ok(self.channels.get(&(user.clone(), id)).cloned())
    }
    fn put_channel(&mut self, record: &ChannelRecord) -> Result<(), StoreError> {
        let key = (record.user_id.clone(), record.id);
        self.channels.insert(key, record.clone());
        Ok(())
    }
    fn remove_channel(&mut self, user: &UserId, id: ChannelId) -> Result<(), StoreError> {
        self.channels.remove(&(user.clone(), id));
        Ok(())
    }
    fn value_claim(
        &self,
        user: &UserId,
        value: &EmailAddress,
    ) -> Result<Option<ChannelId>, StoreError> {
        Ok(self
            .user_values
            .get(&(user.clone(), value.clone()))
            .copied())
    }
    fn set_value_claim(
        &mut self,
        user: &UserId,
        value: &EmailAddress,
        holder: Option<ChannelId>,
    ) -> Result<(), StoreError> {
        set(&mut self.user_values, (user.clone(), value.clone()), holder);
        Ok(())
    }
    fn auth_claim(&self, value: &EmailAddress) -> Result<Option<ChannelKey>, StoreError> {
        Ok(self.auth_values.get(value).cloned())
    }
    fn set_auth_claim(
        &mut self,
        value: &EmailAddress,
        holder: Option<&ChannelKey>,
    ) -> Result<(), StoreError> {
        set(&mut self.auth_values, value.clone(), holder.cloned());
        Ok(())
    }
    fn user_meta(&self, user: &UserId) -> Result<UserMeta, StoreError> {
        Ok(self.users.get(user).cloned().unwrap_or_default())
    }
    fn set_user_meta(&mut self, user: &UserId, meta: &UserMeta) -> Result<(), StoreError> {
        if *meta == UserMeta::default() {
            self.users.remove(user);
            return Ok(());
        }
        self.users.insert(user.clone(), meta.clone());
        Ok(())
    }
    fn link(&self, digest_hex: &str) -> Result<Option<ChannelKey>, StoreError> {
        Ok(self.links.get(digest_hex).cloned())
    }
    fn set_link(
        &mut self,
        digest_hex: &str,
        holder: Option<&ChannelKey>,
    ) -> Result<(), StoreError> {
        set(&mut self.links, digest_hex.to_owned(), holder.cloned());
        Ok(())
    }
    fn send_log(&self, address: &EmailAddress) -> Result<Vec<i64>, StoreError> {
        Ok(self.send_logs.get(address).cloned().unwrap_or_default())
    }
    fn set_send_log(&mut self, address: &EmailAddress, log: &[i64]) -> Result<(), StoreError> {
        self.send_logs.insert(address.clone(), log.to_vec());
        Ok(())
    }
}

impl Tables {
    fn stored(&self, record: ChannelRecord) -> StoredChannel {
        let primary = self.users.get(&record.user_id).and_then(|m| m.primary);
        let is_primary = primary == Some(record.id);
        StoredChannel { record, is_primary }
    }
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

    fn lock(&self) -> Result<MutexGuard<'_, Tables>, StoreError> {
        self.tables
            .lock()
            .map_err(|_| StoreError::new("memory store poisoned"))
    }
}

#[async_trait]
impl ChannelStore for MemoryStore {
    async fn list(&self, user: &UserId) -> Result<Vec<StoredChannel>, StoreError> {
        let tables = self.lock()?;
        let mine = tables.channels.iter().filter(|((u, _), _)| u == user);
        Ok(mine.map(|(_, r)| tables.stored(r.clone())).collect())
    }

    async fn get(&self, user: &UserId, id: ChannelId) -> Result<Option<StoredChannel>, StoreError> {
        let tables = self.lock()?;
        let record = tables.channels.get(&(user.clone(), id)).cloned();
        Ok(record.map(|r| tables.stored(r)))
    }

    async fn apply(&self, change: Change) -> Result<Option<StoredChannel>, WriteError> {
        kv::apply(&mut *self.lock()?, &change)
    }

    async fn find_link(&self, digest: &Digest) -> Result<Option<(UserId, ChannelId)>, StoreError> {
        self.lock()?.link(&digest.to_hex())
    }

    async fn redeem_link(&self, digest: &Digest, now: i64) -> Result<(), RedeemError> {
        kv::redeem_link(&mut *self.lock()?, digest, now)
    }

    async fn send_log(&self, address: &EmailAddress) -> Result<Vec<i64>, StoreError> {
        self.lock()?.send_log(address)
    }
}
