//! The embedded store for local mode: one redb file under `DATA_DIR`. redb commits are
//! copy-on-write with a checksummed root and fsync, so a crash mid-write leaves the previous
//! commit intact; its single writer makes each `Change` one serializable transaction.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use contact_channels::domain::channel::{ChannelRecord, Digest, StoredChannel};
use contact_channels::domain::{ChannelId, EmailAddress, UserId};
use contact_channels::rules::send_limits::{admit_send, release_send};
use contact_channels::rules::verification::{LinkRefusal, check_link, redeemed};
use contact_channels::store::{
    Change, ChannelStore, PrimaryChange, RedeemError, SendLogChange, StoreError, WriteError,
};

// Keys join parts with U+001F, which neither user ids nor email addresses may contain.
const SEP: char = '\u{1f}';
/// `user␟channel` → channel record (JSON).
const CHANNELS: TableDefinition<&str, &[u8]> = TableDefinition::new("channels");
/// `user` → `UserMeta` (JSON): channel count and primary.
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// `user␟value` → channel id: invariant 1.
const USER_VALUES: TableDefinition<&str, &str> = TableDefinition::new("user_values");
/// `value` → `user␟channel`: invariant 2.
const AUTH_VALUES: TableDefinition<&str, &str> = TableDefinition::new("auth_values");
/// hex digest of a link token → `user␟channel`.
const LINKS: TableDefinition<&str, &str> = TableDefinition::new("links");
/// address → send times of the last 24 h (JSON).
const SEND_LOGS: TableDefinition<&str, &[u8]> = TableDefinition::new("send_logs");

#[derive(Debug, Default, Serialize, Deserialize)]
struct UserMeta {
    count: u32,
    primary: Option<ChannelId>,
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

fn channel_key(user: &UserId, id: ChannelId) -> String {
    format!("{user}{SEP}{id}")
}

fn value_key(user: &UserId, value: &EmailAddress) -> String {
    format!("{user}{SEP}{value}")
}

fn parse_channel_key(key: &str) -> Option<(UserId, ChannelId)> {
    let (user, id) = key.split_once(SEP)?;
    Some((UserId::parse(user).ok()?, ChannelId::parse(id).ok()?))
}

fn link_digest(record: Option<&ChannelRecord>) -> Option<String> {
    record
        .and_then(|r| r.verification.as_ref())
        .filter(|v| v.strategy == contact_channels::domain::Strategy::EmailLink)
        .map(|v| v.digest.to_hex())
}

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
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
        Ok(EmbeddedStore { db: Arc::new(db) })
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
    async fn write<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        work: impl FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        self.run(move |db| {
            let txn = db.begin_write().map_err(failed)?;
            match work(&txn) {
                Ok(value) => {
                    txn.commit().map_err(failed)?;
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

/// Applies one change inside an open write transaction.
fn apply_in(txn: &WriteTransaction, change: Change) -> Result<Option<StoredChannel>, WriteError> {
    let mut channels = txn.open_table(CHANNELS).map_err(failed)?;
    let mut users = txn.open_table(USERS).map_err(failed)?;
    let mut user_values = txn.open_table(USER_VALUES).map_err(failed)?;
    let mut auth_values = txn.open_table(AUTH_VALUES).map_err(failed)?;
    let mut links = txn.open_table(LINKS).map_err(failed)?;
    let mut send_logs = txn.open_table(SEND_LOGS).map_err(failed)?;

    let (before, after, primary, send_log) = match change {
        Change::Create {
            record,
            make_primary,
            max_channels,
        } => {
            let key = value_key(&record.user_id, &record.value);
            if user_values.get(key.as_str()).map_err(failed)?.is_some() {
                return Err(WriteError::ValueExists);
            }
            if record.used_for_auth
                && auth_values
                    .get(record.value.as_str())
                    .map_err(failed)?
                    .is_some()
            {
                return Err(WriteError::AuthTaken);
            }
            if read_meta(&users, &record.user_id)?.count >= max_channels {
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
    let (user, id) = (subject.user_id.clone(), subject.id);
    let this = channel_key(&user, id);

    if let Some(before) = &before {
        match read_channel(&channels, &user, id)? {
            Some(current) if current.version == before.version => {}
            _ => return Err(WriteError::Stale),
        }
    }

    // Invariant 1: one channel per (user, value).
    let old_value = before.as_ref().map(|r| value_key(&user, &r.value));
    let new_value = after.as_ref().map(|r| value_key(&user, &r.value));
    if old_value != new_value {
        // (A create checked this already, before the auth claim, in the contract's order.)
        if let Some(new) = new_value.as_ref().filter(|_| before.is_some())
            && user_values.get(new.as_str()).map_err(failed)?.is_some()
        {
            return Err(WriteError::ValueExists);
        }
        if let Some(old) = &old_value {
            user_values.remove(old.as_str()).map_err(failed)?;
        }
        if let Some(new) = &new_value {
            user_values
                .insert(new.as_str(), id.to_string().as_str())
                .map_err(failed)?;
        }
    }

    // Invariant 2: one auth channel per value across users.
    let auth_of = |r: &Option<ChannelRecord>| {
        r.as_ref()
            .filter(|r| r.used_for_auth)
            .map(|r| r.value.as_str().to_owned())
    };
    let (old_auth, new_auth) = (auth_of(&before), auth_of(&after));
    if old_auth != new_auth {
        if let Some(new) = &new_auth {
            let holder = auth_values
                .get(new.as_str())
                .map_err(failed)?
                .map(|v| v.value().to_owned());
            if holder.is_some_and(|h| h != this) {
                return Err(WriteError::AuthTaken);
            }
        }
        if let Some(old) = &old_auth {
            let holder = auth_values
                .get(old.as_str())
                .map_err(failed)?
                .map(|v| v.value().to_owned());
            if holder.as_deref() == Some(this.as_str()) {
                auth_values.remove(old.as_str()).map_err(failed)?;
            }
        }
        if let Some(new) = &new_auth {
            auth_values
                .insert(new.as_str(), this.as_str())
                .map_err(failed)?;
        }
    }

    // Invariant 3 and 7: the primary marker and the count live in one per-user record.
    let mut meta = read_meta(&users, &user)?;
    match (&before, &after) {
        (None, Some(_)) => meta.count += 1,
        (Some(_), None) => meta.count = meta.count.saturating_sub(1),
        _ => {}
    }
    match primary {
        PrimaryChange::Keep => {}
        PrimaryChange::Set => meta.primary = Some(id),
        PrimaryChange::Clear => {
            if meta.primary == Some(id) {
                meta.primary = None;
            }
        }
    }
    let is_primary = meta.primary == Some(id);
    users
        .insert(user.as_str(), encode(&meta)?.as_slice())
        .map_err(failed)?;

    // The link index follows the channel's current link, if any.
    let (old_link, new_link) = (link_digest(before.as_ref()), link_digest(after.as_ref()));
    if old_link != new_link {
        if let Some(old) = &old_link {
            links.remove(old.as_str()).map_err(failed)?;
        }
        if let Some(new) = &new_link {
            links.insert(new.as_str(), this.as_str()).map_err(failed)?;
        }
    }

    if let Some(change) = send_log {
        let (address, next) = match change {
            SendLogChange::Admit { address, at, cap } => {
                let log = read_log(&send_logs, &address)?;
                let next = admit_send(&log, at, cap).map_err(WriteError::DailyCap)?;
                (address, next)
            }
            SendLogChange::Release { address, at } => {
                let log = read_log(&send_logs, &address)?;
                let next = release_send(&log, at);
                (address, next)
            }
        };
        send_logs
            .insert(address.as_str(), encode(&next)?.as_slice())
            .map_err(failed)?;
    }

    match (before, after) {
        (_, Some(mut record)) => {
            record.version = before_version_plus_one(&channels, &user, id)?;
            channels
                .insert(this.as_str(), encode(&record)?.as_slice())
                .map_err(failed)?;
            Ok(Some(StoredChannel { record, is_primary }))
        }
        (Some(_), None) => {
            channels.remove(this.as_str()).map_err(failed)?;
            Ok(None)
        }
        (None, None) => Err(WriteError::Stale),
    }
}

fn before_version_plus_one(
    channels: &impl ReadableTable<&'static str, &'static [u8]>,
    user: &UserId,
    id: ChannelId,
) -> Result<u64, StoreError> {
    Ok(read_channel(channels, user, id)?.map_or(1, |r| r.version + 1))
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
        self.write(move |txn| apply_in(txn, change)).await
    }

    async fn find_link(&self, digest: &Digest) -> Result<Option<(UserId, ChannelId)>, StoreError> {
        let key = digest.to_hex();
        self.run(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let links = txn.open_table(LINKS).map_err(failed)?;
            let found = links.get(key.as_str()).map_err(failed)?;
            Ok(found.and_then(|v| parse_channel_key(v.value())))
        })
        .await
    }

    async fn redeem_link(&self, digest: &Digest, now: i64) -> Result<(), RedeemError> {
        let digest = digest.clone();
        self.write(move |txn| {
            let target = {
                let links = txn.open_table(LINKS).map_err(failed)?;
                let found = links.get(digest.to_hex().as_str()).map_err(failed)?;
                found.and_then(|v| parse_channel_key(v.value()))
            };
            let Some((user, id)) = target else {
                return Err(RedeemError::Refused(LinkRefusal::NotFound));
            };
            let record = {
                let channels = txn.open_table(CHANNELS).map_err(failed)?;
                read_channel(&channels, &user, id)?
            };
            check_link(record.as_ref(), &digest, now).map_err(RedeemError::Refused)?;
            let Some(before) = record else {
                return Err(RedeemError::Refused(LinkRefusal::NotFound));
            };
            let after = redeemed(&before);
            let change = Change::Update {
                before,
                after,
                primary: PrimaryChange::Keep,
                was_primary: false,
                send_log: None,
            };
            match apply_in(txn, change) {
                Ok(_) => Ok(()),
                Err(WriteError::Store(e)) => Err(RedeemError::Store(e)),
                Err(other) => Err(RedeemError::Store(failed(other))),
            }
        })
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
