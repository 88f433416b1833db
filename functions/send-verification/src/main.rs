//! Lambda function `cc-send-verification`: builds its adapters once, then serves its routes.

use std::sync::Arc;

use cc_aws::lambda::{Function, run};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    run(
        const { Function::SendVerification.binary() },
        Some(|sdk, config| {
            Arc::new(cc_ses::SesMailer::from_sdk_config(
                sdk,
                config.mail_from.clone().unwrap_or_default(),
                config.ses_configuration_set.clone(),
            ))
        }),
    )
    .await
}
