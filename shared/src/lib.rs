//! The domain crate of contact-channels: value types that parse on construction, the pure
//! rules, the store and mailer ports, the service (use cases) and the one HTTP layer that every
//! Lambda function and the local server share. No AWS SDK, no storage engine, no Lambda runtime:
//! those live in the adapter crates (`aws/`, `local/`) that depend on this one.
//!
//! Where things go: a new endpoint is a request struct in [`::http::requests`], a use case in
//! [`service`] and a route in [`::http::router`]; a new store implements [`store::ChannelStore`]
//! and passes the conformance suite; a new mailer implements [`mail::Mailer`].

#![warn(missing_docs)]

pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod http;
pub mod mail;
pub mod rules;
pub mod service;
pub mod store;
pub mod telemetry;

pub use config::Config;
pub use error::ApiError;
pub use service::Service;
