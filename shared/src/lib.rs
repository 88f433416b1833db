//! Domain crate of contact-channels: the types, rules, auth, storage and mail ports and the
//! HTTP handlers that every Lambda function and the local server share.

pub mod app;
pub mod auth;
pub mod backends;
pub mod callback;
pub mod config;
pub mod domain;
pub mod dynamo;
pub mod embedded;
pub mod error;
pub mod http_api;
pub mod lambda;
pub mod mail;
pub mod model;
pub mod outbox;
pub mod secrets;
pub mod ses;
pub mod store;
pub mod telemetry;

pub use app::App;
pub use config::Config;
pub use error::ApiError;
