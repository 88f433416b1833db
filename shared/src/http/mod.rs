//! HTTP plumbing shared by the Lambda adapter and the local server: routing (API.md §5),
//! strict JSON bodies that name the offending field, query and path decoding, responses.

use ::http::{Method, StatusCode};
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// The largest body accepted (API.md §1).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Every API route; each Lambda function serves a subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Create,
    List,
    Read,
    Update,
    Delete,
    SendVerification,
    AttemptVerification,
    VerifyLink,
    CheckLink,
}

impl Route {
    pub const ALL: &'static [Route] = &[
        Route::Create,
        Route::List,
        Route::Read,
        Route::Update,
        Route::Delete,
        Route::SendVerification,
        Route::AttemptVerification,
        Route::VerifyLink,
        Route::CheckLink,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Route::Create => "create",
            Route::List => "list",
            Route::Read => "read",
            Route::Update => "update",
            Route::Delete => "delete",
            Route::SendVerification => "send-verification",
            Route::AttemptVerification => "attempt-verification",
            Route::VerifyLink => "verify",
            Route::CheckLink => "check-code",
        }
    }
}

/// A matched route with its raw (still percent-encoded) path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'a> {
    pub route: Route,
    pub user: &'a str,
    pub channel: &'a str,
}

const BASE: &str = "/api/v1/contact-channels";

/// Maps method and path to a route: `404 NOT_FOUND` for an unknown path, `405` for a known
/// path with another method.
pub fn route<'a>(method: &Method, path: &'a str) -> Result<Matched<'a>, ApiError> {
    let rest = path.strip_prefix(BASE).ok_or(ApiError::RouteNotFound)?;
    let segments: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.strip_prefix('/')
            .ok_or(ApiError::RouteNotFound)?
            .split('/')
            .collect()
    };
    if segments.iter().any(|s| s.is_empty()) {
        return Err(ApiError::RouteNotFound);
    }
    let pick = |table: &[(Method, Route)], allow: &'static [&'static str]| {
        table
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, r)| *r)
            .ok_or(ApiError::MethodNotAllowed(allow))
    };
    let (route, user, channel) = match segments.as_slice() {
        [] => (
            pick(
                &[(Method::GET, Route::List), (Method::POST, Route::Create)],
                &["GET", "POST"],
            )?,
            "",
            "",
        ),
        ["verify"] => (
            pick(&[(Method::POST, Route::VerifyLink)], &["POST"])?,
            "",
            "",
        ),
        ["verify", "check-code"] => (
            pick(&[(Method::POST, Route::CheckLink)], &["POST"])?,
            "",
            "",
        ),
        [user, channel] => (
            pick(
                &[
                    (Method::GET, Route::Read),
                    (Method::PATCH, Route::Update),
                    (Method::DELETE, Route::Delete),
                ],
                &["GET", "PATCH", "DELETE"],
            )?,
            *user,
            *channel,
        ),
        [user, channel, "send-verification-code"] => (
            pick(&[(Method::POST, Route::SendVerification)], &["POST"])?,
            *user,
            *channel,
        ),
        [user, channel, "attempt-verification"] => (
            pick(&[(Method::POST, Route::AttemptVerification)], &["POST"])?,
            *user,
            *channel,
        ),
        _ => return Err(ApiError::RouteNotFound),
    };
    Ok(Matched {
        route,
        user,
        channel,
    })
}

/// Percent-decodes one path segment; `None` if it is not UTF-8 afterwards.
pub fn decode_segment(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The first value of a query parameter, decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A JSON object body whose fields are taken one by one, each with an error naming it.
pub struct Fields(Map<String, Value>);

impl Fields {
    /// Parses a body allowing only `allowed` fields. Empty or blank means `{}`.
    pub fn parse(body: &[u8], allowed: &[&str]) -> Result<Fields, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields(Map::new()));
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|_| ApiError::schema("The request body is not valid JSON."))?;
        let Value::Object(map) = value else {
            return Err(ApiError::schema("The request body must be a JSON object."));
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::schema(format!(
                "Unknown field '{unknown}' in the request body."
            )));
        }
        Ok(Fields(map))
    }

    fn present(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub fn opt_str(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::schema(format!(
                "Field '{name}' must be a string."
            ))),
        }
    }

    pub fn req_str(&self, name: &str) -> Result<&str, ApiError> {
        self.opt_str(name)?.ok_or_else(|| missing(name))
    }

    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::schema(format!(
                "Field '{name}' must be a boolean."
            ))),
        }
    }

    pub fn req_bool(&self, name: &str) -> Result<bool, ApiError> {
        self.opt_bool(name)?.ok_or_else(|| missing(name))
    }
}

fn missing(name: &str) -> ApiError {
    ApiError::schema(format!("Field '{name}' is required."))
}

/// A JSON response with the contract's content type.
pub fn json_response(status: StatusCode, body: &Value) -> ::http::Response<Bytes> {
    let mut response = ::http::Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        ::http::header::CONTENT_TYPE,
        ::http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_methods_and_paths() {
        let r = |m: Method, p: &str| route(&m, p).map(|m| m.route);
        assert_eq!(
            r(Method::POST, "/api/v1/contact-channels"),
            Ok(Route::Create)
        );
        assert_eq!(r(Method::GET, "/api/v1/contact-channels"), Ok(Route::List));
        assert_eq!(
            r(Method::POST, "/api/v1/contact-channels/verify"),
            Ok(Route::VerifyLink)
        );
        assert_eq!(
            r(Method::POST, "/api/v1/contact-channels/verify/check-code"),
            Ok(Route::CheckLink)
        );
        assert_eq!(
            r(Method::GET, "/api/v1/contact-channels/me/x"),
            Ok(Route::Read)
        );
        assert_eq!(
            r(Method::PATCH, "/api/v1/contact-channels/me/x"),
            Ok(Route::Update)
        );
        assert_eq!(
            r(
                Method::POST,
                "/api/v1/contact-channels/me/x/send-verification-code"
            ),
            Ok(Route::SendVerification)
        );
        assert_eq!(
            r(Method::GET, "/api/v1/contact-channels/verify"),
            Err(ApiError::MethodNotAllowed(&["POST"]))
        );
        assert_eq!(
            r(Method::GET, "/api/v1/contact-channels/verify/check-code"),
            Err(ApiError::MethodNotAllowed(&["POST"]))
        );
        assert_eq!(
            r(Method::PUT, "/api/v1/contact-channels/me/x"),
            Err(ApiError::MethodNotAllowed(&["GET", "PATCH", "DELETE"]))
        );
        for unknown in [
            "/",
            "/api/v1/contact-channels/",
            "/api/v1/contact-channelsx",
            "/api/v1/contact-channels/a//b",
            "/api/v1/contact-channels/a/b/c",
        ] {
            assert_eq!(
                r(Method::GET, unknown),
                Err(ApiError::RouteNotFound),
                "{unknown}"
            );
        }
    }

    #[test]
    fn bodies_are_strict_objects() {
        assert!(Fields::parse(b"  ", &[]).is_ok());
        assert!(Fields::parse(b"[]", &[]).is_err());
        assert!(Fields::parse(b"{", &[]).is_err());
        let e = Fields::parse(br#"{"x":1}"#, &["y"]).err().unwrap();
        assert!(e.to_string().contains("'x'"));
        let f = Fields::parse(br#"{"a":null,"b":"s","c":true}"#, &["a", "b", "c"]).unwrap();
        assert_eq!(f.opt_str("a"), Ok(None));
        assert!(f.req_str("a").unwrap_err().to_string().contains("'a'"));
        assert!(f.req_bool("b").unwrap_err().to_string().contains("'b'"));
        assert_eq!(f.req_bool("c"), Ok(true));
    }

    #[test]
    fn query_and_path_values_are_percent_decoded() {
        assert_eq!(
            query_param(Some("user_id=a%7Cb&x=1"), "user_id").as_deref(),
            Some("a|b")
        );
        assert_eq!(query_param(None, "user_id"), None);
        assert_eq!(decode_segment("a%7Cb").as_deref(), Some("a|b"));
        assert_eq!(decode_segment("%FF"), None);
    }
}
