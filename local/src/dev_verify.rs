//! `GET /_dev/verify?code=…`: a stand-in for the app's own verification page, so a person can
//! click a link in the local mailbox and see it verify. Use it as the `callback_url`
//! (`http://127.0.0.1:3000/_dev/verify`). Local mode only.

use bytes::Bytes;
use contact_channels::http::query_param;
use contact_channels::mail::escape_html;
use contact_channels::{ApiError, App};
use http::Method;
use serde_json::{Value, json};

pub async fn respond(app: &App, request: &http::Request<Bytes>) -> http::Response<Bytes> {
    if request.method() != Method::GET {
        return ApiError::MethodNotAllowed(&["GET"]).into_response();
    }
    let code = query_param(request.uri().query(), "code").unwrap_or_default();
    // The same route a real app's page would call, through the same handler.
    let verify = http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/contact-channels/verify")
        .body(Bytes::from(json!({ "code": code }).to_string()));
    let (status, body) = match verify {
        Ok(verify) => {
            let response = app.handle(verify).await;
            let body: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
            (response.status(), body)
        }
        Err(_) => (http::StatusCode::INTERNAL_SERVER_ERROR, Value::Null),
    };
    let message = if status.is_success() {
        "Your email address is verified.".to_owned()
    } else {
        format!(
            "Not verified: {} ({}).",
            body["error"].as_str().unwrap_or("unexpected answer"),
            body["code"].as_str().unwrap_or("?")
        )
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Verify</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto}}</style></head>\
<body><h1>Email verification</h1><p>{}</p><p><a href=\"/_dev/mailbox\">Back to the mailbox</a></p></body></html>",
        escape_html(&message)
    );
    let mut response = http::Response::new(Bytes::from(page));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}
