//! Lambda function `cc-delete`: all behaviour lives in the `contact-channels` crate.

use contact_channels::lambda::{Function, run};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    run(Function::Delete).await
}
