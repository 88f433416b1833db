//! Lambda function `cc-events`: builds its EventBridge client once, then turns each batch of
//! DynamoDB stream records into lifecycle events.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cc_eventbridge::run().await
}
