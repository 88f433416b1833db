//! The service: one method per use case, taking typed commands and returning domain results.
//! It authorizes (clients act on their own user only), applies the rules and retries optimistic
//! writes; it knows nothing of HTTP. The order of its checks is the contract's (docs/api.md §1):
//! `me` → 403 → 404 → the endpoint's own errors.
//!
//! A new use case is a method here (in `channels` or `verification`) and a command in
//! [`commands`]; the HTTP layer maps a route to it.

mod channels;
pub mod commands;
mod retry;
#[cfg(test)]
mod tests;
mod verification;

use std::sync::Arc;

use ::http::HeaderMap;

use crate::auth::{Authenticator, Caller, KeySetSource};
use crate::config::{Config, Limits};
use crate::domain::channel::StoredChannel;
use crate::domain::secret::Hasher;
use crate::domain::{UserId, UserRef};
use crate::error::{Action, ApiError};
use crate::mail::Mailer;
use crate::store::ChannelStore;

pub use commands::{
    ChannelRef, CreateChannel, ListChannels, SendVerification, Sent, UpdateChannel,
};

/// The use cases over one store, one mailer (if this process sends mail) and one config.
///
/// Generic over the store, so that a Lambda binary (`Service<DynamoStore>`) links only the
/// store operations its handlers call: behind `dyn ChannelStore` every method of the store's
/// vtable, and the DynamoDB operations they use, would be in every function. A process that
/// picks its store at run time (the local server, tests) uses the default, `dyn ChannelStore`.
pub struct Service<S: ?Sized = dyn ChannelStore> {
    config: Config,
    auth: Authenticator,
    hasher: Hasher,
    store: Arc<S>,
    /// `None` in a process that serves no route that sends mail (most Lambda functions).
    mailer: Option<Arc<dyn Mailer>>,
}

impl<S: ChannelStore + ?Sized> Service<S> {
    /// A service over `store`, with no mailer and HS256/server-key authentication only.
    pub fn new(config: Config, store: Arc<S>) -> Self {
        let auth = Authenticator::new(&config.jwt, config.server_key_digests.clone(), None);
        let hasher = config
            .accepted_verification_secrets
            .iter()
            .fold(Hasher::new(config.verification_secret.clone()), |h, a| {
                h.accepting(a.secret.clone(), a.until_millis)
            });
        Service {
            config,
            auth,
            hasher,
            store,
            mailer: None,
        }
    }

    /// Sends verification mail through `mailer`.
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// Verifies RS256/ES256 client tokens against the key set `key_set` serves.
    pub fn with_key_set(mut self, key_set: Arc<dyn KeySetSource>) -> Self {
        self.auth = Authenticator::new(
            &self.config.jwt,
            self.config.server_key_digests.clone(),
            Some(key_set),
        );
        self
    }

    /// The configuration the service runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// Who is calling, from the request's headers, or the 401 to answer.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        self.auth.authenticate(headers).await
    }

    /// The channel a request names, if it exists and the caller may act on it for `action`.
    async fn find(
        &self,
        caller: &Caller,
        at: &ChannelRef,
        action: Action,
    ) -> Result<StoredChannel, ApiError> {
        let user = resolve(caller, &at.user, action)?;
        self.find_of(&user, at).await
    }

    /// The channel of an already resolved user.
    async fn find_of(&self, user: &UserId, at: &ChannelRef) -> Result<StoredChannel, ApiError> {
        let id = at.channel.ok_or(ApiError::ChannelNotFound)?;
        self.store
            .get(user, id)
            .await?
            .ok_or(ApiError::ChannelNotFound)
    }
}

/// The user a request acts on: `me` is the client's own id; a client naming another user is
/// refused for `action`; a server must name the user.
fn resolve(caller: &Caller, user: &UserRef, action: Action) -> Result<UserId, ApiError> {
    match (caller, user) {
        (Caller::Server, UserRef::Me) => Err(ApiError::CannotGetOwnUserWithoutUser),
        (Caller::Server, UserRef::Id(id)) => Ok(id.clone()),
        (Caller::Client(sub), UserRef::Me) => Ok(sub.clone()),
        (Caller::Client(sub), UserRef::Id(id)) if sub == id => Ok(id.clone()),
        (Caller::Client(_), UserRef::Id(_)) => Err(ApiError::Forbidden(action)),
    }
}

/// A client may not set `is_verified`; only a server may (invariant 4).
fn check_server_only(caller: &Caller, is_verified: Option<bool>) -> Result<(), ApiError> {
    if is_verified.is_some() && *caller != Caller::Server {
        return Err(ApiError::ServerOnlyField);
    }
    Ok(())
}
