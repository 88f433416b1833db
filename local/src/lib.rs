//! Local mode of contact-channels (`make run`): the embedded store, the outbox mailer, the dev
//! server and its `/_dev` pages. Nothing here is linked into a Lambda function.

pub mod backends;
pub mod conn;
pub mod dev;
pub mod embedded;
pub mod events;
pub mod outbox;
pub mod server;
