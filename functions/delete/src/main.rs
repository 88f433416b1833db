//! Lambda function `cc-delete`: builds its adapters once, then serves its routes.

use cc_aws::lambda::{Function, run};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    run(const { Function::Delete.binary() }, None).await
}
