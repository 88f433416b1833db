//! The AWS adapters of contact-channels: the DynamoDB store, the shared SDK configuration, the
//! JWKS fetcher and the Lambda entry point. The SES mailer is its own crate (`cc-ses`), so that
//! only the function that sends mail links the SES client.

pub mod dynamo;
pub mod jwks;
pub mod lambda;
pub mod sdk;
pub mod secrets;
