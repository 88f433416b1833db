//! The embedded store for local mode: one redb file under `DATA_DIR`. redb commits are
//! copy-on-write with a checksummed root and fsync, so a crash mid-write leaves the previous
//! commit intact; its single writer makes each `Change` one serializable transaction.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use contact_channels::domain::channel::{ChannelRecord, Digest, StoredChannel};
use contact_channels::domain::{ChannelId, EmailAddress, UserId};
use contact_channels::store::kv::{self, ChannelKey, KvTables, UserMeta};
use contact_channels::store::{Change, ChannelStore, RedeemError, StoreError, WriteError};

use crate::events::{EventLog, Recording};

// Keys join parts with U+001F, which neither user ids nor email addresses may contain.
pub const SEP: char = '\u{1f}';
/// `user␟channel` → channel record (JSON).
pub const CHANNELS: TableDefinition<&str, &[u8]> = TableDefinition::new("channels");
/// `user` → `UserMeta` (JSON): channel count and primary.
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// `user␟value` → channel id: invariant 1.
pub const USER_VALUES: TableDefinition<&str, &str> = TableDefinition::new("user_values");
/// `value` → `user␟channel`: invariant 2.
pub const AUTH_VALUES: TableDefinition<&str, &str> = TableDefinition::new("auth_values");
/// hex digest of a link token → `user␟channel`.
pub const LINKS: TableDefinition<&str, &str> = TableDefinition::new("links");
/// address → send times of the last 24 h (JSON).
pub const SEND_LOGS: TableDefinition<&str, &[u8]> = TableDefinition::new("send_logs");

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(e)
}

fn channel_key(user: &UserId, id: ChannelId) -> String {
    format!("{user}{SEP}{id}")
}

fn value_key(user: &UserId, value: &EmailAddress) -> String {
    format!("{user}{SEP}{value}")
}

fn parse_channel_key(key: &str) -> Result<ChannelKey, StoreError> {
    let parsed = key
        .split_once(SEP)
        .and_then(|(user, id)| Some((UserId::parse(user).ok()?, ChannelId::parse(id).ok()?)));
    parsed.ok_or_else(|| failed("corrupt channel key"))
}

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    events: Option<EventLog>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `dir/channels.redb`. Fails if another process has it open.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(failed)?;
        let db = Database::create(dir.join("channels.redb")).map_err(failed)?;
        let txn = db.begin_write().map_err(failed)?;
        {
            txn.open_table(CHANNELS).map_err(failed)?;
            txn.open_table(USERS).map_err(failed)?;
            txn.open_table(USER_VALUES).map_err(failed)?;
            txn.open_table(AUTH_VALUES).map_err(failed)?;
            txn.open_table(LINKS).map_err(failed)?;
            txn.open_table(SEND_LOGS).map_err(failed)?;
        }
        txn.commit().map_err(failed)?;
        Ok(EmbeddedStore {
            db: Arc::new(db),
            events: None,
        })
    }

    /// Reports what each write transaction committed (channel items and primary marker, before
    /// and after) to `log`, as lifecycle events (`make run`'s `/_dev/events`).
    pub fn with_events(mut self, log: EventLog) -> Self {
        self.events = Some(log);
        self
    }

    async fn run<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        let db = self.db.clone();
        // redb blocks on fsync; keep that off the async workers.
        match tokio::task::spawn_blocking(move || work(&db)).await {
            Ok(result) => result,
            Err(e) => Err(E::from(failed(e))),
        }
    }

    /// Runs `work` in one write transaction, committed only if it succeeds.
    /// One write transaction through [`Recording`] tables; once it is committed, what it wrote
    /// goes to the event log (in commit order: the log's order is held across both).
    async fn write<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        work: impl FnOnce(&mut Recording<'_, Tables<'_>>) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        let events = self.events.clone();
        self.run(move |db| {
            let mut order = events.as_ref().map(EventLog::order);
            let txn = db.begin_write().map_err(failed)?;
            let (result, committed) = {
                let mut tables = Tables::open(&txn)?;
                let mut recording = Recording::new(&mut tables);
                let result = work(&mut recording);
                (result, recording.committed)
            };
            match result {
                Ok(value) => {
                    txn.commit().map_err(failed)?;
                    if let (Some(log), Some(order)) = (&events, order.as_mut()) {
                        log.append(order, &committed);
                    }
                    Ok(value)
                }
                Err(e) => {
                    txn.abort().map_err(failed)?;
                    Err(e)
                }
            }
        })
        .await
    }
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(failed)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(failed)
}

fn read_meta(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    user: &UserId,
) -> Result<UserMeta, StoreError> {
    match table.get(user.as_str()).map_err(failed)? {
        Some(bytes) => decode(bytes.value()),
        None => Ok(UserMeta::default()),
    }
}

fn read_channel(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    user: &UserId,
    id: ChannelId,
) -> Result<Option<ChannelRecord>, StoreError> {
    match table.get(channel_key(user, id).as_str()).map_err(failed)? {
        Some(bytes) => decode(bytes.value()).map(Some),
        None => Ok(None),
    }
}

fn read_log(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    address: &EmailAddress,
) -> Result<Vec<i64>, StoreError> {
    match table.get(address.as_str()).map_err(failed)? {
        Some(bytes) => decode(bytes.value()),
        None => Ok(Vec::new()),
    }
}

fn read_link(
    table: &impl ReadableTable<&'static str, &'static str>,
    digest_hex: &str,
) -> Result<Option<ChannelKey>, StoreError> {
    match table.get(digest_hex).map_err(failed)? {
        Some(key) => parse_channel_key(key.value()).map(Some),
        None => Ok(None),
    }
}

/// Sets `key` to `value` in a string table, or removes it for `None`.
fn set_str(
    table: &mut Table<&str, &str>,
    key: &str,
    value: Option<&str>,
) -> Result<(), StoreError> {
    match value {
        Some(value) => table.insert(key, value).map(drop),
        None => table.remove(key).map(drop),
    }
    .map_err(failed)
}

/// The six tables, open in one write transaction: what `kv::apply` works on.
struct Tables<'t> {
    channels: Table<'t, &'static str, &'static [u8]>,
    users: Table<'t, &'static str, &'static [u8]>,
    user_values: Table<'t, &'static str, &'static str>,
    auth_values: Table<'t, &'static str, &'static str>,
    links: Table<'t, &'static str, &'static str>,
    send_logs: Table<'t, &'static str, &'static [u8]>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Tables {
            channels: txn.open_table(CHANNELS).map_err(failed)?,
            users: txn.open_table(USERS).map_err(failed)?,
            user_values: txn.open_table(USER_VALUES).map_err(failed)?,
            auth_values: txn.open_table(AUTH_VALUES).map_err(failed)?,
            links: txn.open_table(LINKS).map_err(failed)?,
            send_logs: txn.open_table(SEND_LOGS).map_err(failed)?,
        })
    }
}

impl KvTables for Tables<'_> {
    fn channel(&self, user: &UserId, id: ChannelId) -> Result<Option<ChannelRecord>, StoreError> {
        read_channel(&self.channels, user, id)
    }
    fn put_channel(&mut self, record: &ChannelRecord) -> Result<(), StoreError> {
        let key = channel_key(&record.user_id, record.id);
        let bytes = encode(record)?;
        self.channels
            .insert(key.as_str(), bytes.as_slice())
            .map(drop)
            .map_err(failed)
    }
    fn remove_channel(&mut self, user: &UserId, id: ChannelId) -> Result<(), StoreError> {
        let key = channel_key(user, id);
        self.channels.remove(key.as_str()).map(drop).map_err(failed)
    }
    fn value_claim(
        &self,
        user: &UserId,
        value: &EmailAddress,
    ) -> Result<Option<ChannelId>, StoreError> {
        match self
            .user_values
            .get(value_key(user, value).as_str())
            .map_err(failed)?
        {
            Some(id) => ChannelId::parse(id.value()).map(Some).map_err(failed),
            None => Ok(None),
        }
    }
    fn set_value_claim(
        &mut self,
        user: &UserId,
        value: &EmailAddress,
        holder: Option<ChannelId>,
    ) -> Result<(), StoreError> {
        let holder = holder.map(|id| id.to_string());
        let key = value_key(user, value);
        set_str(&mut self.user_values, &key, holder.as_deref())
    }
    fn auth_claim(&self, value: &EmailAddress) -> Result<Option<ChannelKey>, StoreError> {
        match self.auth_values.get(value.as_str()).map_err(failed)? {
            Some(key) => parse_channel_key(key.value()).map(Some),
            None => Ok(None),
        }
    }
    fn set_auth_claim(
        &mut self,
        value: &EmailAddress,
        holder: Option<&ChannelKey>,
    ) -> Result<(), StoreError> {
        let holder = holder.map(|(user, id)| channel_key(user, *id));
        set_str(&mut self.auth_values, value.as_str(), holder.as_deref())
    }
    fn user_meta(&self, user: &UserId) -> Result<UserMeta, StoreError> {
        read_meta(&self.users, user)
    }
    fn set_user_meta(&mut self, user: &UserId, meta: &UserMeta) -> Result<(), StoreError> {
        let bytes = encode(meta)?;
        self.users
            .insert(user.as_str(), bytes.as_slice())
            .map(drop)
            .map_err(failed)
    }
    fn link(&self, digest_hex: &str) -> Result<Option<ChannelKey>, StoreError> {
        read_link(&self.links, digest_hex)
    }
    fn set_link(
        &mut self,
        digest_hex: &str,
        holder: Option<&ChannelKey>,
    ) -> Result<(), StoreError> {
        let holder = holder.map(|(user, id)| channel_key(user, *id));
        set_str(&mut self.links, digest_hex, holder.as_deref())
    }
    fn send_log(&self, address: &EmailAddress) -> Result<Vec<i64>, StoreError> {
        read_log(&self.send_logs, address)
    }
    fn set_send_log(&mut self, address: &EmailAddress, log: &[i64]) -> Result<(), StoreError> {
        let bytes = encode(&log)?;
        self.send_logs
            .insert(address.as_str(), bytes.as_slice())
            .map(drop)
            .map_err(failed)
    }
}

#[async_trait]
impl ChannelStore for EmbeddedStore {
    async fn list(&self, user: &UserId) -> Result<Vec<StoredChannel>, StoreError> {
        let user = user.clone();
        self.run(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let channels = txn.open_table(CHANNELS).map_err(failed)?;
            let users = txn.open_table(USERS).map_err(failed)?;
            let primary = read_meta(&users, &user)?.primary;
            let (start, end) = (format!("{user}{SEP}"), format!("{user}\u{20}"));
            let mut out = Vec::new();
            for entry in channels
                .range(start.as_str()..end.as_str())
                .map_err(failed)?
            {
                let (_, bytes) = entry.map_err(failed)?;
                let record: ChannelRecord = decode(bytes.value())?;
                let is_primary = primary == Some(record.id);
                out.push(StoredChannel { record, is_primary });
            }
            Ok(out)
        })
        .await
    }

    async fn get(&self, user: &UserId, id: ChannelId) -> Result<Option<StoredChannel>, StoreError> {
        let user = user.clone();
        self.run(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let channels = txn.open_table(CHANNELS).map_err(failed)?;
            let users = txn.open_table(USERS).map_err(failed)?;
            let Some(record) = read_channel(&channels, &user, id)? else {
                return Ok(None);
            };
            let is_primary = read_meta(&users, &user)?.primary == Some(id);
            Ok(Some(StoredChannel { record, is_primary }))
        })
        .await
    }

    async fn apply(&self, change: Change) -> Result<Option<StoredChannel>, WriteError> {
        self.write(move |tables| kv::apply(tables, &change)).await
    }

    async fn find_link(&self, digest: &Digest) -> Result<Option<(UserId, ChannelId)>, StoreError> {
        let key = digest.to_hex();
        self.run(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            read_link(&txn.open_table(LINKS).map_err(failed)?, &key)
        })
        .await
    }

    async fn redeem_link(&self, digest: &Digest, now: i64) -> Result<(), RedeemError> {
        let digest = digest.clone();
        self.write(move |tables| kv::redeem_link(tables, &digest, now))
            .await
    }

    async fn send_log(&self, address: &EmailAddress) -> Result<Vec<i64>, StoreError> {
        let address = address.clone();
        self.run(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let logs = txn.open_table(SEND_LOGS).map_err(failed)?;
            read_log(&logs, &address)
        })
        .await
    }
}
