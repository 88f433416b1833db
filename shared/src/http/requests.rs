//! The request bodies of the API as typed structs: unknown fields, a field given twice, a
//! missing required field or a wrong type are refused by serde (the extractor turns that into a
//! `400 SCHEMA_ERROR` naming the field); `null` counts as absent for optional fields. Domain
//! values parse while deserializing, so a handler only ever sees valid ones.

use serde::Deserialize;

use crate::domain::callback::CallbackUrl;
use crate::domain::secret::VerificationCode;
use crate::domain::{ChannelType, EmailAddress, Strategy, UserRef};
use crate::error::ApiError;
use crate::service::{CreateChannel, SendVerification, UpdateChannel};

/// The body of `POST /api/v1/contact-channels`: a new channel.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Whose channel: a user id, or `me` (a client's own user).
    pub user_id: UserRef,
    /// The channel type.
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// The address.
    pub value: EmailAddress,
    /// Whether the address signs the user in; only one user's channel per address may be.
    pub used_for_auth: bool,
    /// Make it the user's primary channel, demoting the previous one (default false).
    pub is_primary: Option<bool>,
    /// Mark it verified without a code (server only: a client gets `403 FORBIDDEN`).
    pub is_verified: Option<bool>,
}

impl From<CreateRequest> for CreateChannel {
    fn from(r: CreateRequest) -> Self {
        CreateChannel {
            user: r.user_id,
            value: r.value,
            used_for_auth: r.used_for_auth,
            is_primary: r.is_primary.unwrap_or(false),
            is_verified: r.is_verified,
        }
    }
}

/// The body of `PATCH …/{user_id}/{contact_channel_id}`: only the fields given change; `{}`
/// changes nothing.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// A new address; a real change makes the channel unverified and voids its code or link.
    pub value: Option<EmailAddress>,
    /// The channel type (checked, cannot change).
    #[serde(rename = "type")]
    pub kind: Option<ChannelType>,
    /// Whether the address signs the user in.
    pub used_for_auth: Option<bool>,
    /// `true` makes it the primary (demoting the previous one); `false` leaves the user none.
    pub is_primary: Option<bool>,
    /// Server only (a client gets `403 FORBIDDEN`); `false` on a verified channel un-verifies it.
    pub is_verified: Option<bool>,
}

impl From<UpdateRequest> for UpdateChannel {
    fn from(r: UpdateRequest) -> Self {
        UpdateChannel {
            value: r.value,
            used_for_auth: r.used_for_auth,
            is_primary: r.is_primary,
            is_verified: r.is_verified,
        }
    }
}

/// `DELETE …`: a body, if any, must be an empty object.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

/// The body of `POST …/send-verification-code`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// `email_link` (the default) or `email_code`.
    pub strategy: Option<Strategy>,
    /// Absolute http(s) URL on an allowed origin (`ALLOWED_CALLBACK_URLS`). Required for
    /// `email_link` (the mail links to it with `code=<token>` added); optional for `email_code`
    /// (the mail links to it unchanged: the page where the code is typed).
    // The document promises less than the server takes: http(s), a host name whose labels
    // start with a letter (no parser reads it as an IPv4 number), an optional port, then URI
    // characters. A URL it admits is never refused as malformed, only as not allowed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            format = Uri,
            examples("https://app.example.com/verify"),
            pattern = "^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[0-9]{1,4})?([/?#][A-Za-z0-9._~!$&'()*+,;=:@/?#-]*)?$"
        )
    )]
    pub callback_url: Option<String>,
}

impl TryFrom<SendRequest> for SendVerification {
    type Error = ApiError;

    /// Checks the shape of the callback URL (a schema error); whether the allow-list admits
    /// it is the service's question, asked later in the endpoint's order.
    fn try_from(r: SendRequest) -> Result<Self, ApiError> {
        let callback = r
            .callback_url
            .map(|raw| {
                CallbackUrl::parse(&raw).map_err(|_| {
                    ApiError::schema("Field 'callback_url' must be an absolute http or https URL.")
                })
            })
            .transpose()?;
        match (r.strategy.unwrap_or(Strategy::EmailLink), callback) {
            (Strategy::EmailLink, Some(callback)) => Ok(SendVerification::Link { callback }),
            (Strategy::EmailLink, None) => Err(ApiError::schema(
                "Field 'callback_url' is required for the email_link strategy.",
            )),
            (Strategy::EmailCode, page) => Ok(SendVerification::Code { page }),
        }
    }
}

/// `{"code": …}` of `…/attempt-verification`: the 6-digit code from the mail.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// Exactly six ASCII digits; anything else is refused without spending a guess.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[0-9]{6}$", examples("123456"))
    )]
    pub code: String,
}

/// `{"code": …}` of `/verify` and `/verify/check-code`: the token from the link's `code`
/// query parameter.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The token as the link carried it (URL-safe; a 6-digit code is not a token).
    #[cfg_attr(
        feature = "openapi",
        schema(examples("Qm9vbS1hLTI1Ni1iaXQtdG9rZW4tZm9yLWEtbGluaw"))
    )]
    pub code: String,
}

impl TryFrom<CodeRequest> for VerificationCode {
    type Error = ApiError;

    fn try_from(r: CodeRequest) -> Result<Self, ApiError> {
        VerificationCode::parse(&r.code)
            .ok_or_else(|| ApiError::schema("Field 'code' must be exactly six digits."))
    }
}
