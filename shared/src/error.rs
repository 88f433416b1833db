//! The one error type of the service: every way a request can fail, each with its status and
//! code. `http::error` turns it into the contract's JSON error body; nothing else does.

use ::http::StatusCode;
use serde::Serialize;

use crate::domain::{ChannelId, ChannelType};

use crate::rules::verification::LinkRefusal;
use crate::store::{StoreError, WriteError};

/// The verb a client was refused for, used in the 403 sentence.
#[allow(missing_docs)] // The variants are the verbs themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    List,
    Read,
    Create,
    Update,
    Delete,
    Verify,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::List => "list",
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Verify => "verify",
        }
    }
}

/// Every failure a request can end in. Each variant's doc names its status and code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 413 `PAYLOAD_TOO_LARGE`
    #[error("The request body is larger than 16 KiB.")]
    PayloadTooLarge,
    /// 404 `NOT_FOUND`
    #[error("No route matches this path.")]
    RouteNotFound,
    /// 405 `METHOD_NOT_ALLOWED`; carries the methods the path accepts.
    #[error("This method is not allowed on this path.")]
    MethodNotAllowed(&'static [&'static str]),
    /// 401 `UNAUTHENTICATED`
    #[error("No credentials were sent: use an access token or a server key.")]
    Unauthenticated,
    /// 401 `INVALID_ACCESS_TOKEN`
    #[error("The access token is invalid or expired.")]
    InvalidAccessToken,
    /// 401 `INVALID_SERVER_KEY`
    #[error("The server key is invalid.")]
    InvalidServerKey,
    /// 400 `SCHEMA_ERROR`; the message names the offending field.
    #[error("{0}")]
    Schema(String),
    /// 400 `CANNOT_GET_OWN_USER_WITHOUT_USER`
    #[error("The user id 'me' can only be used with a client access token.")]
    CannotGetOwnUserWithoutUser,
    /// 403 `FORBIDDEN`
    #[error("Client can only {} contact channels for their own user.", .0.verb())]
    Forbidden(Action),
    /// 403 `FORBIDDEN`: a client tried to set a server-only field.
    #[error("Only a server can set is_verified.")]
    ServerOnlyField,
    /// 404 `CONTACT_CHANNEL_NOT_FOUND`
    #[error("Contact channel not found.")]
    ChannelNotFound,
    /// 409 `CONTACT_CHANNEL_ALREADY_EXISTS`, with the existing channel's id when known (so a
    /// client that retries a create after a timeout can recover).
    #[error("This user already has a contact channel with this value.")]
    ChannelAlreadyExists(Option<ChannelId>),
    /// 409 `CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE`
    #[error("This contact channel is already used for authentication by another user.")]
    UsedForAuthBySomeoneElse,
    /// 409 `TOO_MANY_CONTACT_CHANNELS`
    #[error("This user has reached the maximum number of contact channels.")]
    TooManyChannels,
    /// 409 `EMAIL_ALREADY_VERIFIED`
    #[error("This email address is already verified.")]
    EmailAlreadyVerified,
    /// 400 `REDIRECT_URL_NOT_WHITELISTED`
    #[error("The callback URL is not in the list of allowed callback URLs.")]
    RedirectUrlNotWhitelisted,
    /// 429 `RATE_LIMITED`, with `retry-after` in whole seconds.
    #[error("Too many verification emails: try again in {0} seconds.")]
    RateLimited(u64),
    /// 502 `EMAIL_DELIVERY_FAILED`
    #[error("The email could not be delivered by the mail service.")]
    EmailDeliveryFailed,
    /// 404 `VERIFICATION_CODE_NOT_FOUND`
    #[error("The verification code does not exist or is no longer valid.")]
    VerificationCodeNotFound,
    /// 400 `VERIFICATION_CODE_EXPIRED`
    #[error("The verification code has expired.")]
    VerificationCodeExpired,
    /// 409 `VERIFICATION_CODE_ALREADY_USED`
    #[error("The verification code has already been used.")]
    VerificationCodeAlreadyUsed,
    /// 400 `VERIFICATION_CODE_MAX_ATTEMPTS_REACHED`
    #[error("Too many wrong guesses: request a new verification code.")]
    VerificationCodeMaxAttemptsReached,
    /// 400 `VERIFICATION_CODE_INCORRECT`, with the guesses left.
    #[error("The verification code is incorrect.")]
    VerificationCodeIncorrect {
        /// Guesses this code still allows.
        attempts_remaining: u32,
    },
    /// 408 `REQUEST_TIMEOUT`: the request's head or declared body did not arrive in time (the
    /// local server; API Gateway has limits of its own).
    #[error("The request did not arrive in time.")]
    RequestTimeout,
    /// 414 `URI_TOO_LONG`: the request line is too long (the local server).
    #[error("The request line is too long.")]
    UriTooLong,
    /// 431 `REQUEST_HEADER_FIELDS_TOO_LARGE`: the headers are too large or too many (the local
    /// server).
    #[error("The request headers are too large.")]
    HeadersTooLarge,
    /// 400 `MALFORMED_REQUEST`: the bytes are not an HTTP/1 request (the local server).
    #[error("The request is not a well-formed HTTP request.")]
    MalformedRequest,
    /// 500 `INTERNAL_ERROR`: the detail goes to the log, never to the caller.
    #[error("An internal error occurred.")]
    Internal,
}

impl ApiError {
    /// A `400 SCHEMA_ERROR` whose message names the offending field.
    pub fn schema(message: impl Into<String>) -> Self {
        ApiError::Schema(message.into())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RouteNotFound | ChannelNotFound | VerificationCodeNotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Unauthenticated | InvalidAccessToken | InvalidServerKey => StatusCode::UNAUTHORIZED,
            Schema(_)
            | CannotGetOwnUserWithoutUser
            | RedirectUrlNotWhitelisted
            | VerificationCodeExpired
            | VerificationCodeMaxAttemptsReached
            | VerificationCodeIncorrect { .. } => StatusCode::BAD_REQUEST,
            Forbidden(_) | ServerOnlyField => StatusCode::FORBIDDEN,
            ChannelAlreadyExists(_)
            | UsedForAuthBySomeoneElse
            | TooManyChannels
            | EmailAlreadyVerified
            | VerificationCodeAlreadyUsed => StatusCode::CONFLICT,
            RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            EmailDeliveryFailed => StatusCode::BAD_GATEWAY,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            UriTooLong => StatusCode::URI_TOO_LONG,
            HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            MalformedRequest => StatusCode::BAD_REQUEST,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The contract's `code` (also sent as `x-known-error`).
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            RouteNotFound => "NOT_FOUND",
            MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            Unauthenticated => "UNAUTHENTICATED",
            InvalidAccessToken => "INVALID_ACCESS_TOKEN",
            InvalidServerKey => "INVALID_SERVER_KEY",
            Schema(_) => "SCHEMA_ERROR",
            CannotGetOwnUserWithoutUser => "CANNOT_GET_OWN_USER_WITHOUT_USER",
            Forbidden(_) | ServerOnlyField => "FORBIDDEN",
            ChannelNotFound => "CONTACT_CHANNEL_NOT_FOUND",
            ChannelAlreadyExists(_) => "CONTACT_CHANNEL_ALREADY_EXISTS",
            UsedForAuthBySomeoneElse => "CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE",
            TooManyChannels => "TOO_MANY_CONTACT_CHANNELS",
            EmailAlreadyVerified => "EMAIL_ALREADY_VERIFIED",
            RedirectUrlNotWhitelisted => "REDIRECT_URL_NOT_WHITELISTED",
            RateLimited(_) => "RATE_LIMITED",
            EmailDeliveryFailed => "EMAIL_DELIVERY_FAILED",
            VerificationCodeNotFound => "VERIFICATION_CODE_NOT_FOUND",
            VerificationCodeExpired => "VERIFICATION_CODE_EXPIRED",
            VerificationCodeAlreadyUsed => "VERIFICATION_CODE_ALREADY_USED",
            VerificationCodeMaxAttemptsReached => "VERIFICATION_CODE_MAX_ATTEMPTS_REACHED",
            VerificationCodeIncorrect { .. } => "VERIFICATION_CODE_INCORRECT",
            RequestTimeout => "REQUEST_TIMEOUT",
            UriTooLong => "URI_TOO_LONG",
            HeadersTooLarge => "REQUEST_HEADER_FIELDS_TOO_LARGE",
            MalformedRequest => "MALFORMED_REQUEST",
            Internal => "INTERNAL_ERROR",
        }
    }

    /// The `details` object of the error body, for the errors that carry one.
    pub fn details(&self) -> Option<ErrorDetails> {
        let none = ErrorDetails::default();
        match self {
            ApiError::ChannelAlreadyExists(Some(id)) => Some(ErrorDetails {
                contact_channel_id: Some(*id),
                ..none
            }),
            ApiError::UsedForAuthBySomeoneElse => Some(ErrorDetails {
                kind: Some(ChannelType::Email),
                ..none
            }),
            ApiError::VerificationCodeIncorrect { attempts_remaining } => Some(ErrorDetails {
                attempts_remaining: Some(*attempts_remaining),
                ..none
            }),
            ApiError::RateLimited(seconds) => Some(ErrorDetails {
                retry_after_seconds: Some(*seconds),
                ..none
            }),
            _ => None,
        }
    }
}

/// The `details` of an error body: what a caller needs to act on some codes. Each field is
/// present only with the code named in its doc.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)] // Serialize-only: it makes the schema closed (additionalProperties: false).
pub struct ErrorDetails {
    /// `CONTACT_CHANNEL_ALREADY_EXISTS`: the id of the user's existing channel with this value.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid, nullable = false))]
    pub contact_channel_id: Option<ChannelId>,
    /// `CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE`: the channel type (never the user).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub kind: Option<ChannelType>,
    /// `VERIFICATION_CODE_INCORRECT`: the guesses this code still allows (at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false, minimum = 1))]
    pub attempts_remaining: Option<u32>,
    /// `RATE_LIMITED`: the wait in whole seconds, as in `retry-after`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false, minimum = 1))]
    pub retry_after_seconds: Option<u64>,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::Internal
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::ValueExists => ApiError::ChannelAlreadyExists(None),
            WriteError::AuthTaken => ApiError::UsedForAuthBySomeoneElse,
            WriteError::TooMany => ApiError::TooManyChannels,
            WriteError::SendLimited(wait) => ApiError::RateLimited(wait),
            WriteError::Store(e) => e.into(),
            WriteError::Stale => {
                tracing::error!("write kept losing races; gave up");
                ApiError::Internal
            }
        }
    }
}

impl From<LinkRefusal> for ApiError {
    fn from(r: LinkRefusal) -> Self {
        match r {
            LinkRefusal::NotFound => ApiError::VerificationCodeNotFound,
            LinkRefusal::Expired => ApiError::VerificationCodeExpired,
            LinkRefusal::AlreadyUsed => ApiError::VerificationCodeAlreadyUsed,
        }
    }
}
