//! The single place an [`ApiError`] becomes an HTTP response: the contract's JSON body
//! `{"code", "error", "details"}` with `x-known-error`, and `retry-after` or `allow` where due.

use ::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::responses::ErrorBody;
use crate::error::ApiError;

/// A JSON response with the contract's content type.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code(),
            error: self.to_string(),
            details: self.details(),
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert("x-known-error", HeaderValue::from_static(self.code()));
        match &self {
            ApiError::RateLimited(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
            }
            ApiError::MethodNotAllowed(methods) => {
                if let Ok(allow) = HeaderValue::from_str(&methods.join(", ")) {
                    headers.insert(header::ALLOW, allow);
                }
            }
            _ => {}
        }
        response
    }
}
