//! Channel use cases: create, list, read, update, delete (docs/api.md §5.1–5.5).

use super::retry::{retrying, settled, written};
use super::{
    ChannelRef, CreateChannel, ListChannels, Service, UpdateChannel, check_server_only, resolve,
};
use crate::auth::Caller;
use crate::domain::channel::{ChannelRecord, StoredChannel};
use crate::domain::{ChannelId, EmailAddress, UserId, now_millis};
use crate::error::{Action, ApiError};
use crate::store::{Change, ChannelStore, PrimaryAsRead, PrimaryChange, WriteError};

impl<S: ChannelStore + ?Sized> Service<S> {
    /// Creates a channel; `409`s in the contract's order (value, auth, count).
    pub async fn create(
        &self,
        caller: &Caller,
        command: CreateChannel,
    ) -> Result<StoredChannel, ApiError> {
        let user = resolve(caller, &command.user, Action::Create)?;
        check_server_only(caller, command.is_verified)?;
        let record = ChannelRecord {
            id: ChannelId::new_random(),
            user_id: user,
            value: command.value,
            used_for_auth: command.used_for_auth,
            is_verified: command.is_verified.unwrap_or(false),
            created_at_millis: now_millis(),
            verification: None,
            last_sent_at_millis: None,
            version: 0,
        };
        let (record, make_primary) = (&record, command.is_primary);
        let created = retrying(|| async move {
            let create = |previous| Change::Create {
                record: record.clone(),
                primary: match make_primary {
                    true => PrimaryChange::Set { previous },
                    false => PrimaryChange::Keep,
                },
                max_channels: self.limits().max_channels_per_user,
            };
            // A user's first channel is the usual one created primary, so the first try
            // assumes no primary and reads nothing; only when the marker names another
            // channel is it read, and demoted by a second try.
            let mut result = self.store.apply(create(None)).await;
            if make_primary
                && result == Err(WriteError::Stale)
                && let Some(previous) = self.primary_of(&record.user_id).await?
            {
                result = self.store.apply(create(Some(previous))).await;
            }
            // Otherwise a create conditions on claims only; it is stale only when it collided
            // with a concurrent transaction on the same items, and then trying again is right.
            settled(result)
        })
        .await;
        self.name_existing(created, &record.user_id, &record.value)
            .await
            .and_then(written)
    }

    /// A user's channels, oldest first; or the one with the asked-for id (0 or 1 item).
    pub async fn list(
        &self,
        caller: &Caller,
        query: ListChannels,
    ) -> Result<Vec<StoredChannel>, ApiError> {
        let user = resolve(caller, &query.user, Action::List)?;
        let mut channels = match query.only {
            None => self.store.list(&user).await?,
            Some(Some(id)) => self.store.get(&user, id).await?.into_iter().collect(),
            Some(None) => Vec::new(),
        };
        channels.sort_by(|a, b| {
            (a.record.created_at_millis, a.record.id)
                .cmp(&(b.record.created_at_millis, b.record.id))
        });
        Ok(channels)
    }

    /// One channel.
    pub async fn read(&self, caller: &Caller, at: ChannelRef) -> Result<StoredChannel, ApiError> {
        self.find(caller, &at, Action::Read).await
    }

    /// Applies the fields of `command` that differ from the stored channel; `{}` changes nothing.
    pub async fn update(
        &self,
        caller: &Caller,
        at: ChannelRef,
        command: UpdateChannel,
    ) -> Result<StoredChannel, ApiError> {
        let user = resolve(caller, &at.user, Action::Update)?;
        check_server_only(caller, command.is_verified)?;
        let (user, at, command) = (&user, &at, &command);
        let updated = retrying(|| async move {
            // Making a channel primary demotes the current primary at the version read, so it
            // reads the user's channels: on DynamoDB one Query, no more round trips than the
            // read of one channel it replaces.
            let (current, primary) = match command.is_primary {
                Some(true) => {
                    let id = at.channel.ok_or(ApiError::ChannelNotFound)?;
                    let all = self.store.list(user).await?;
                    let current = all.iter().find(|c| c.record.id == id).cloned();
                    (current.ok_or(ApiError::ChannelNotFound)?, primary_in(&all))
                }
                _ => (self.find_of(user, at).await?, None),
            };
            let Some(change) = update_change(&current, primary, command) else {
                return Ok(Some(Some(current)));
            };
            settled(self.store.apply(change).await)
        })
        .await;
        match &command.value {
            Some(value) => self.name_existing(updated, user, value).await,
            None => updated,
        }
        .and_then(written)
    }

    /// Removes a channel, its claims and its outstanding code or link.
    pub async fn delete(&self, caller: &Caller, at: ChannelRef) -> Result<(), ApiError> {
        let user = resolve(caller, &at.user, Action::Delete)?;
        let (user, at) = (&user, &at);
        retrying(|| async move {
            let current = self.find_of(user, at).await?;
            let change = Change::Delete {
                before: current.record,
                was_primary: current.is_primary,
            };
            settled(self.store.apply(change).await)
        })
        .await
        .map(|_| ())
    }

    /// The user's primary channel, if any, as a change that demotes it needs it.
    async fn primary_of(&self, user: &UserId) -> Result<Option<PrimaryAsRead>, ApiError> {
        Ok(primary_in(&self.store.list(user).await?))
    }

    /// Adds the id of the user's channel with `value` to a `409 CONTACT_CHANNEL_ALREADY_EXISTS`,
    /// so that a client retrying a create after a timeout can recover (one read, on that path
    /// only).
    async fn name_existing<T>(
        &self,
        result: Result<T, ApiError>,
        user: &UserId,
        value: &EmailAddress,
    ) -> Result<T, ApiError> {
        match result {
            Err(ApiError::ChannelAlreadyExists(None)) => {
                let existing = self
                    .store
                    .list(user)
                    .await?
                    .into_iter()
                    .find(|c| c.record.value == *value)
                    .map(|c| c.record.id);
                Err(ApiError::ChannelAlreadyExists(existing))
            }
            other => other,
        }
    }
}

/// The primary among a user's channels.
fn primary_in(channels: &[StoredChannel]) -> Option<PrimaryAsRead> {
    channels
        .iter()
        .find(|c| c.is_primary)
        .map(|c| PrimaryAsRead {
            id: c.record.id,
            version: c.record.version,
        })
}

/// The change an update makes to `current`, or `None` when it changes nothing; `primary` is
/// the user's primary as read with it, which making `current` primary demotes.
fn update_change(
    current: &StoredChannel,
    primary: Option<PrimaryAsRead>,
    command: &UpdateChannel,
) -> Option<Change> {
    let before = &current.record;
    let mut after = before.clone();
    if let Some(value) = command.value.as_ref().filter(|v| **v != before.value) {
        // Invariant 5: a new address is unproven, and codes sent to the old one die.
        after.value = value.clone();
        after.is_verified = false;
        after.verification = None;
        after.last_sent_at_millis = None;
    }
    if let Some(auth) = command.used_for_auth {
        after.used_for_auth = auth;
    }
    match command.is_verified {
        // Verified by the server: an outstanding code or link is used up.
        Some(true) if !after.is_verified => {
            after.is_verified = true;
            after.verification = None;
        }
        // Un-verify resets the verification; on an unverified channel it changes nothing.
        Some(false) if after.is_verified => {
            after.is_verified = false;
            after.verification = None;
        }
        _ => {}
    }
    let primary = match command.is_primary {
        Some(true) if !current.is_primary => PrimaryChange::Set { previous: primary },
        Some(false) if current.is_primary => PrimaryChange::Clear,
        _ => PrimaryChange::Keep,
    };
    if after == *before && primary == PrimaryChange::Keep {
        return None;
    }
    Some(Change::Update {
        before: before.clone(),
        after,
        primary,
        was_primary: current.is_primary,
        send_log: None,
    })
}
