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

/// `POST /contact-channels` (API.md §5.1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Whose channel, or `me`.
    pub user_id: UserRef,
    /// Always `email` for now.
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// The address.
    pub value: EmailAddress,
    /// Whether the address signs the user in.
    pub used_for_auth: bool,
    /// Make it the primary (default false).
    pub is_primary: Option<bool>,
    /// Server only.
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

/// `PATCH /contact-channels/{user_id}/{contact_channel_id}` (API.md §5.4): all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// A new address.
    pub value: Option<EmailAddress>,
    /// Checked (`email`), never stored.
    #[serde(rename = "type")]
    pub kind: Option<ChannelType>,
    /// Sign-in use.
    pub used_for_auth: Option<bool>,
    /// Make primary or not.
    pub is_primary: Option<bool>,
    /// Server only.
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

/// `POST …/send-verification-code` (API.md §5.6).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// `email_link` (default) or `email_code`.
    pub strategy: Option<Strategy>,
    /// Required for links; for codes, the page where the code is typed.
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

/// `{"code": …}`: a link token (`/verify`, `/verify/check-code`) or a 6-digit code
/// (`…/attempt-verification`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The token or code, as the user got it.
    pub code: String,
}

impl TryFrom<CodeRequest> for VerificationCode {
    type Error = ApiError;

    fn try_from(r: CodeRequest) -> Result<Self, ApiError> {
        VerificationCode::parse(&r.code)
            .ok_or_else(|| ApiError::schema("Field 'code' must be exactly six digits."))
    }
}
