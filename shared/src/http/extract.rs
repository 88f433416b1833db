//! Extractors that turn a request into typed values, each rejection being the contract's JSON
//! error: the caller (401), the channel named by the path and the list query (400), and JSON
//! bodies (400 naming the field). Handlers take them in the contract's order of checks.

use std::sync::Arc;

use ::http::request::Parts;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use serde::de::DeserializeOwned;

use crate::auth::Caller;
use crate::domain::{ChannelId, USER_REF_RULE, UserRef};
use crate::error::ApiError;
use crate::service::{ChannelRef, ListChannels, Service};
use crate::store::ChannelStore;

impl<S: ChannelStore + ?Sized> FromRequestParts<Arc<Service<S>>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &Arc<Service<S>>,
    ) -> Result<Self, ApiError> {
        service.authenticate(&parts.headers).await
    }
}

fn bad_user(field: &str) -> ApiError {
    ApiError::schema(format!("Field '{field}' {USER_REF_RULE}."))
}

/// Percent-decodes one path segment; `None` if it is not UTF-8 afterwards.
fn decode_segment(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// `/{user_id}/{contact_channel_id}`: a malformed user id is a schema error; a malformed
/// channel id is a channel that does not exist (404, after authorization).
impl<S: Send + Sync> FromRequestParts<S> for ChannelRef {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::RouteNotFound)?;
        let param = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| v);
        let user = param("user_id")
            .and_then(decode_segment)
            .and_then(|raw| UserRef::parse(&raw).ok())
            .ok_or_else(|| bad_user("user_id"))?;
        let channel = param("contact_channel_id")
            .and_then(decode_segment)
            .and_then(|raw| ChannelId::parse(&raw).ok());
        Ok(ChannelRef { user, channel })
    }
}

/// The first value of a query parameter, decoded.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `?user_id=…[&contact_channel_id=…]`; other parameters are ignored (docs/api.md §1).
impl<S: Send + Sync> FromRequestParts<S> for ListChannels {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query();
        let user = query_param(query, "user_id")
            .ok_or_else(|| ApiError::schema("Query parameter 'user_id' is required."))?;
        let user = UserRef::parse(&user)
            .map_err(|_| ApiError::schema(format!("Query parameter 'user_id' {USER_REF_RULE}.")))?;
        let only = query_param(query, "contact_channel_id").map(|raw| ChannelId::parse(&raw).ok());
        Ok(ListChannels { user, only })
    }
}

/// A JSON object body deserialized into `T`. The content type is not required (docs/api.md §1);
/// an empty or blank body counts as `{}`.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        // The body was already read within the size limit, before routing.
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::schema("The request body could not be read."))?;
        parse_body(&bytes).map(Body)
    }
}

/// Deserializes a body, turning serde's complaint into a sentence that names the field.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    // serde's derived structs also accept a JSON array (fields by position): only an object
    // is a request body here.
    if !bytes.trim_ascii_start().starts_with(b"{") {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::schema("The request body must be a JSON object."),
                Err(_) => ApiError::schema("The request body is not valid JSON."),
            },
        );
    }
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut json).map_err(schema_error)?;
    json.end()
        .map_err(|_| ApiError::schema("The request body is not valid JSON."))?;
    Ok(value)
}

fn schema_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let field = e.path().to_string();
    let inner = e.into_inner();
    if !matches!(inner.classify(), Category::Data) {
        return ApiError::schema("The request body is not valid JSON.");
    }
    let text = inner.to_string();
    // serde_json appends the position; the sentence is what comes before it.
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(name) = quoted("unknown field `") {
        return ApiError::schema(format!("Unknown field '{name}' in the request body."));
    }
    if let Some(name) = quoted("missing field `") {
        return ApiError::schema(format!("Field '{name}' is required."));
    }
    if let Some(name) = quoted("duplicate field `") {
        return ApiError::schema(format!("Field '{name}' is given more than once."));
    }
    if field == "." {
        return ApiError::schema("The request body must be a JSON object.");
    }
    if message.starts_with("invalid type: null") {
        return ApiError::schema(format!("Field '{field}' is required."));
    }
    if let Some((_, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|m| m.rsplit_once(", expected "))
    {
        return ApiError::schema(format!("Field '{field}' must be {expected}."));
    }
    ApiError::schema(format!("Field '{field}' is invalid: {message}."))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::http::requests::{CreateRequest, EmptyRequest, UpdateRequest};

    fn message<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        parse_body::<T>(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn blank_bodies_are_empty_objects() {
        assert!(parse_body::<EmptyRequest>(b"  \n").is_ok());
        assert!(parse_body::<UpdateRequest>(b"").is_ok());
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_refused() {
        for body in [
            "{",
            "[1]",
            "[\"a\",\"email\",\"a@example.com\",true]",
            "\"str\"",
            "null",
            "1",
            "{} x",
        ] {
            let m = message::<UpdateRequest>(body);
            assert!(
                m == "The request body is not valid JSON."
                    || m == "The request body must be a JSON object.",
                "{body}: {m}"
            );
        }
    }

    #[test]
    fn each_schema_error_names_its_field() {
        let base = r#""user_id":"a","type":"email","value":"a@example.com""#;
        for (body, expected) in [
            (format!("{{{base}}}"), "Field 'used_for_auth' is required."),
            (
                format!(r#"{{{base},"used_for_auth":"yes"}}"#),
                "Field 'used_for_auth' must be a boolean.",
            ),
            (
                format!(r#"{{{base},"used_for_auth":null}}"#),
                "Field 'used_for_auth' is required.",
            ),
            (
                format!(r#"{{{base},"used_for_auth":true,"x":1}}"#),
                "Unknown field 'x' in the request body.",
            ),
            (
                format!(r#"{{{base},"used_for_auth":true,"value":"b@example.com"}}"#),
                "Field 'value' is given more than once.",
            ),
            (
                r#"{"user_id":7,"type":"email","value":"a@example.com","used_for_auth":true}"#
                    .to_owned(),
                "Field 'user_id' must be a string.",
            ),
        ] {
            assert_eq!(message::<CreateRequest>(&body), expected, "{body}");
        }
        for (body, field) in [
            (r#"{"type":"phone"}"#, "'type'"),
            (r#"{"value":"not-an-email"}"#, "'value'"),
        ] {
            assert!(message::<UpdateRequest>(body).contains(field), "{body}");
        }
    }

    #[test]
    fn null_means_absent_for_optional_fields() {
        let r: UpdateRequest =
            parse_body(br#"{"value":null,"is_primary":null,"type":null}"#).unwrap();
        assert!(r.value.is_none() && r.is_primary.is_none() && r.kind.is_none());
    }
}
