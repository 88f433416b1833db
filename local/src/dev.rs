//! The local-only `/_dev` pages (docs/api.md §7), never compiled into a Lambda function:
//! `/_dev/mailbox` (HTML, links clickable) and `/_dev/mailbox.json`, the outbox newest first;
//! and `/_dev/verify?code=…`, a stand-in for the app's own page, so a person can click a link
//! in the mailbox and see it verify (use `http://127.0.0.1:3000/_dev/verify` as `callback_url`);
//! `/_dev/events` (HTML) and `/_dev/events.json`, the lifecycle events of the embedded store,
//! newest first; and the account page example on the TypeScript SDK: `/_dev/account?user=alice`, its files,
//! the built SDK under `/_dev/sdk/`, and `/_dev/token?user=…`, which mints that page's dev token.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use contact_channels::mail::escape_html;
use contact_channels::{ApiError, Service};

use crate::events::EventLog;
use crate::outbox::{Delivered, Outbox};

#[derive(Clone)]
struct Dev {
    service: Arc<Service>,
    outbox: Option<Outbox>,
    events: Option<EventLog>,
}

/// The `/_dev` routes, merged into the API router by the local server.
pub fn router(service: Arc<Service>, outbox: Option<Outbox>, events: Option<EventLog>) -> Router {
    let not_allowed = || async { ApiError::MethodNotAllowed(&["GET"]) };
    Router::new()
        .route("/_dev/mailbox", get(mailbox_page).fallback(not_allowed))
        .route(
            "/_dev/mailbox.json",
            get(mailbox_json).fallback(not_allowed),
        )
        .route("/_dev/events", get(events_page).fallback(not_allowed))
        .route("/_dev/events.json", get(events_json).fallback(not_allowed))
        .route("/_dev/verify", get(verify_page).fallback(not_allowed))
        .route("/_dev/token", get(token).fallback(not_allowed))
        .route("/_dev/account", get(account_page).fallback(not_allowed))
        .route(
            "/_dev/account/{file}",
            get(account_file).fallback(not_allowed),
        )
        .route("/_dev/sdk/{file}", get(sdk_file).fallback(not_allowed))
        .with_state(Dev {
            service,
            outbox,
            events,
        })
}

async fn mails(dev: &Dev) -> Result<Vec<Delivered>, ApiError> {
    match &dev.outbox {
        Some(outbox) => outbox.list().await.map_err(|e| {
            tracing::error!(error = %e, "cannot read the outbox");
            ApiError::Internal
        }),
        None => Ok(Vec::new()),
    }
}

async fn mailbox_json(State(dev): State<Dev>) -> Result<axum::Json<Vec<Delivered>>, ApiError> {
    Ok(axum::Json(mails(&dev).await?))
}

async fn mailbox_page(State(dev): State<Dev>) -> Result<Html<String>, ApiError> {
    Ok(Html(page(&mails(&dev).await?)))
}

async fn events(dev: &Dev) -> Result<Vec<serde_json::Value>, ApiError> {
    match &dev.events {
        Some(log) => log.list().await.map_err(|e| {
            tracing::error!(error = %e, "cannot read the event log");
            ApiError::Internal
        }),
        None => Ok(Vec::new()),
    }
}

async fn events_json(
    State(dev): State<Dev>,
) -> Result<axum::Json<Vec<serde_json::Value>>, ApiError> {
    Ok(axum::Json(events(&dev).await?))
}

async fn events_page(State(dev): State<Dev>) -> Result<Html<String>, ApiError> {
    Ok(Html(events_html(&events(&dev).await?)))
}

/// One row an event: when, type, user, channel, and its detail in full.
fn events_html(events: &[serde_json::Value]) -> String {
    let mut rows = String::new();
    for e in events {
        let d = &e["detail"];
        let text = |v: &serde_json::Value| escape_html(v.as_str().unwrap_or("-"));
        rows.push_str(&format!(
            "<tr><td><time data-ms=\"{ms}\">{ms}</time></td><td><b>{}</b></td><td>{}</td><td><code>{}</code></td>\
<td><details><summary>detail</summary><pre>{}</pre></details></td></tr>",
            text(&e["detail-type"]),
            text(&d["user_id"]),
            text(&d["contact_channel_id"]),
            escape_html(&serde_json::to_string_pretty(d).unwrap_or_default()),
            ms = d["occurred_at_millis"].as_i64().unwrap_or_default(),
        ));
    }
    let body = if events.is_empty() {
        "<p>No events yet. Create a channel to see one here.</p>".to_owned()
    } else {
        format!(
            "<table><tr><th>when</th><th>type</th><th>user</th><th>channel</th><th></th></tr>{rows}</table>"
        )
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Local events</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}}\
td,th{{text-align:left;vertical-align:top;padding:.3rem .6rem;border-bottom:1px solid #ddd}}</style></head>\
<body><h1>Lifecycle events</h1><p>{} event(s), newest first, as the events function publishes them to \
EventBridge. Also as <a href=\"/_dev/events.json\">JSON</a>.</p>{body}\
<script>for(const t of document.querySelectorAll('time'))t.textContent=new Date(+t.dataset.ms).toLocaleString()</script>\
</body></html>",
        events.len()
    )
}

async fn verify_page(State(dev): State<Dev>, RawQuery(query): RawQuery) -> Response {
    let code = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    // The same use case a real app's page would call through `POST /verify`.
    let (status, message) = match dev.service.verify_link(&code).await {
        Ok(()) => (
            ::http::StatusCode::OK,
            "Your email address is verified.".to_owned(),
        ),
        Err(e) => (e.status(), format!("Not verified: {e} ({}).", e.code())),
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Verify</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto}}</style></head>\
<body><h1>Email verification</h1><p>{}</p><p><a href=\"/_dev/mailbox\">Back to the mailbox</a></p></body></html>",
        escape_html(&message)
    );
    (status, Html(page)).into_response()
}

fn query_param(query: Option<String>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `GET /_dev/token?user=alice`: a dev client token for the account page, as `make token` mints
/// it (an hour long). Local mode only, like the mailbox: the page asks for it per request, so it
/// shows how an app hands `getAccessToken` a fresh token.
async fn token(State(dev): State<Dev>, RawQuery(query): RawQuery) -> Response {
    let user = query_param(query, "user").unwrap_or_default();
    match crate::server::mint_token(dev.service.config(), &user, 3600) {
        Ok(token) => {
            axum::Json(serde_json::json!({ "user_id": user, "token": token })).into_response()
        }
        Err(e) => ApiError::schema(format!("cannot mint a dev token: {e}")).into_response(),
    }
}

// The example and the SDK are read from the source tree at request time, not embedded: the SDK
// is built by npm (`make sdk`, run by `make run`), after or without cargo, and a fresh clone
// must compile without it.
const ACCOUNT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/account-page");
const SDK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/typescript/dist");

/// A file name without a path: letters, digits, `-`, `_` and inner dots only.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("map" | "json") => "application/json",
        Some("ts") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn static_file(dir: &str, name: &str, missing: &str) -> Response {
    if !is_plain_file_name(name) {
        return ApiError::RouteNotFound.into_response();
    }
    let path = std::path::Path::new(dir).join(name);
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            [
                (::http::header::CONTENT_TYPE, content_type(name)),
                (::http::header::CACHE_CONTROL, "no-store"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), "{missing}");
            ApiError::RouteNotFound.into_response()
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot read a dev page file");
            ApiError::Internal.into_response()
        }
    }
}

/// `GET /_dev/account?user=alice`: the account page example (`examples/account-page`).
async fn account_page() -> Response {
    if tokio::fs::metadata(std::path::Path::new(SDK_DIR).join("index.js"))
        .await
        .is_err()
    {
        let page = "<!doctype html><meta charset=\"utf-8\"><title>Account</title>\
<h1>The TypeScript SDK is not built</h1><p>Run <code>make sdk</code> (needs Node.js 18 or later \
and npm), then reload this page.</p>";
        return (::http::StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response();
    }
    static_file(ACCOUNT_DIR, "index.html", "account page missing").await
}

async fn account_file(Path(file): Path<String>) -> Response {
    static_file(ACCOUNT_DIR, &file, "account page file missing").await
}

async fn sdk_file(Path(file): Path<String>) -> Response {
    static_file(SDK_DIR, &file, "SDK file missing: run `make sdk`").await
}

/// Escapes the text and turns every http(s) URL in it into a link.
fn linkify(text: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for (j, word) in line.split(' ').enumerate() {
            if j > 0 {
                out.push(' ');
            }
            let escaped = escape_html(word);
            if word.starts_with("http://") || word.starts_with("https://") {
                out.push_str(&format!("<a href=\"{escaped}\">{escaped}</a>"));
            } else {
                out.push_str(&escaped);
            }
        }
    }
    out
}

fn page(mails: &[Delivered]) -> String {
    let mut items = String::new();
    for mail in mails {
        items.push_str(&format!(
            "<article><h2>{}</h2><p class=\"meta\">To {} &middot; <time data-ms=\"{}\">{}</time></p><pre>{}</pre></article>",
            escape_html(&mail.subject),
            escape_html(&mail.to),
            mail.sent_at_millis,
            mail.sent_at_millis,
            linkify(&mail.text)
        ));
    }
    if mails.is_empty() {
        items.push_str("<p>No mail yet. Send a verification to see it here.</p>");
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Local mailbox</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem}}\
article{{border:1px solid #ccc;border-radius:6px;padding:0 1rem;margin:1rem 0}}\
pre{{white-space:pre-wrap}}.meta{{color:#666}}</style></head><body><h1>Local mailbox</h1>\
<p>{} mail(s), newest first. Also as <a href=\"/_dev/mailbox.json\">JSON</a>.</p>{items}\
<script>for(const t of document.querySelectorAll('time'))t.textContent=new Date(+t.dataset.ms).toLocaleString()</script>\
</body></html>",
        mails.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_become_anchors_and_text_is_escaped() {
        let html = linkify("Open https://a.example/v?x=1&code=T now <b>");
        assert!(html.contains("<a href=\"https://a.example/v?x=1&amp;code=T\">"));
        assert!(html.contains("&lt;b&gt;"));
    }

    #[test]
    fn only_plain_file_names_are_served() {
        assert!(is_plain_file_name("index.js"));
        assert!(is_plain_file_name("email-address.d.ts"));
        for bad in [
            "", "..", "../x.js", ".env", "a/b.js", "a\\b.js", "x..js", "%2e%2e",
        ] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }
}
