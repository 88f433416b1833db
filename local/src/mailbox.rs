//! `/_dev/mailbox` (HTML) and `/_dev/mailbox.json`: the local outbox, newest first. Local
//! mode only; these routes are not compiled into any Lambda function.

use crate::outbox::{Delivered, Outbox};
use bytes::Bytes;
use contact_channels::ApiError;
use contact_channels::http::json_response;
use contact_channels::mail::escape_html;
use http::{Method, StatusCode};

pub async fn respond(
    outbox: Option<&Outbox>,
    request: &http::Request<Bytes>,
) -> http::Response<Bytes> {
    let path = request.uri().path();
    if path != "/_dev/mailbox" && path != "/_dev/mailbox.json" {
        return ApiError::RouteNotFound.into_response();
    }
    if request.method() != Method::GET {
        return ApiError::MethodNotAllowed(&["GET"]).into_response();
    }
    let mails = match outbox {
        Some(outbox) => match outbox.list().await {
            Ok(mails) => mails,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                return ApiError::Internal.into_response();
            }
        },
        None => Vec::new(),
    };
    if path.ends_with(".json") {
        let value = serde_json::to_value(&mails).unwrap_or_default();
        return json_response(StatusCode::OK, &value);
    }
    let mut response = http::Response::new(Bytes::from(page(&mails)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
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
}
