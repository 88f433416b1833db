//! The typed commands of the use cases: what a request asks for, already parsed into domain
//! types. The HTTP layer builds them from request bodies; tests build them directly.

use crate::domain::callback::CallbackUrl;
use crate::domain::{ChannelId, EmailAddress, UserRef};

/// A channel as a request names it: its user, and its id (`None` when the path held something
/// that is not a channel id, which is simply a channel that does not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRef {
    /// The user, or `me`.
    pub user: UserRef,
    /// The channel id, if the request named a well-formed one.
    pub channel: Option<ChannelId>,
}

/// Create a channel (docs/api.md §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateChannel {
    /// Whose channel it is.
    pub user: UserRef,
    /// The address, normalized.
    pub value: EmailAddress,
    /// Whether the address signs the user in (unique across users).
    pub used_for_auth: bool,
    /// Make it the user's primary, demoting the previous one.
    pub is_primary: bool,
    /// Server only: create it verified (or explicitly not).
    pub is_verified: Option<bool>,
}

/// List a user's channels, or the one with an id (docs/api.md §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListChannels {
    /// Whose channels.
    pub user: UserRef,
    /// `Some(None)`: an id was asked for but is malformed, so nothing matches.
    pub only: Option<Option<ChannelId>>,
}

/// Change a channel; `None` leaves a field as it is (docs/api.md §5.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateChannel {
    /// A new address (a real change unverifies the channel and kills its code or link).
    pub value: Option<EmailAddress>,
    /// Sign-in use.
    pub used_for_auth: Option<bool>,
    /// Make primary, or stop being primary.
    pub is_primary: Option<bool>,
    /// Server only: verify or un-verify.
    pub is_verified: Option<bool>,
}

/// Which verification mail to send (docs/api.md §5.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendVerification {
    /// A link: the callback page with `code=<token>` added.
    Link {
        /// The app's page that receives the token.
        callback: CallbackUrl,
    },
    /// A 6-digit code, and optionally the page where the user types it.
    Code {
        /// Linked from the mail, unchanged.
        page: Option<CallbackUrl>,
    },
}

/// What an accepted send answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The strategy of the mail sent.
    pub strategy: crate::domain::Strategy,
    /// When the code or link stops working.
    pub expires_at_millis: i64,
}
