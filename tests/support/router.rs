//! Requests sent straight through the shared axum router (the one Lambda and the local server
//! run), for tests that wire the service to adapters of their own.

use axum::Router;
use bytes::Bytes;
use serde_json::Value;
use tower::ServiceExt;

/// Status, headers and JSON body of one request through `router`.
pub async fn call<B>(router: &Router, request: http::Request<B>) -> (u16, http::HeaderMap, Value)
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let response = router
        .clone()
        .oneshot(request.map(axum::body::Body::new))
        .await
        .unwrap_or_else(|e| match e {});
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a readable body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}
