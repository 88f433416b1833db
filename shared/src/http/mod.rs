//! The one HTTP layer, on axum, used as it is by every Lambda function (`lambda_http::run`) and
//! by the local server (`axum::serve`): routing with the contract's JSON 404/405, the 16 KiB
//! body limit (413, before routing), typed request bodies, and the one error → JSON mapping.
//!
//! A new endpoint is a [`Route`] (its path and method in `router`) with its [`endpoints`] constant, a request struct in
//! [`requests`], a handler in `handlers` that calls one [`crate::service::Service`] method, and
//! a response struct in [`responses`] if it answers something new.

mod error;
pub mod extract;
mod handlers;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod requests;
pub mod responses;
mod router;

pub use error::json_response;
pub use handlers::OPENAPI_JSON;
pub use router::{Endpoint, Route, router};

/// The largest body accepted (docs/api.md §1).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
