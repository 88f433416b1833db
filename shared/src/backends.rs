//! Builds the store and mailer a process was configured with, once, at start-up. The AWS SDK
//! config is loaded once and shared, so `AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SESV2` … work as the SDK documents.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;

use crate::config::{Config, MailerKind, StoreKind};
use crate::dynamo::DynamoStore;
use crate::embedded::EmbeddedStore;
use crate::mail::Mailer;
use crate::outbox::Outbox;
use crate::ses::SesMailer;
use crate::store::ChannelStore;

pub struct Backends {
    pub store: Arc<dyn ChannelStore>,
    pub mailer: Arc<dyn Mailer>,
    /// The outbox, when mail goes there, for the local mailbox routes.
    pub outbox: Option<Outbox>,
}

/// The shared AWS configuration: SDK defaults plus timeouts, so a hung call becomes an
/// error the caller sees (a 500, or a 502 for mail) instead of a Lambda timeout.
pub async fn aws_config() -> aws_config::SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(12))
        .build();
    // Throttling and transient errors: the SDK's standard mode retries with exponential
    // backoff and full jitter, at most this many attempts in all. (Transaction conflicts come
    // back as cancellations and are retried by the handlers, also with jitter and a bound.)
    let retries = aws_config::retry::RetryConfig::standard().with_max_attempts(3);
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(retries)
        .load()
        .await
}

/// `echo_mail` prints outbox mail to standard output (local mode only: on Lambda that would
/// put codes into the logs).
pub async fn build(config: &Config, echo_mail: bool) -> Result<Backends, String> {
    let needs_aws = config.store == StoreKind::DynamoDb || config.mailer == MailerKind::Ses;
    let sdk = if needs_aws {
        Some(aws_config().await)
    } else {
        None
    };
    let store: Arc<dyn ChannelStore> = match (config.store, &sdk, &config.table_name) {
        (StoreKind::DynamoDb, Some(sdk), Some(table)) => Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            table.clone(),
        )),
        (StoreKind::DynamoDb, _, _) => {
            return Err("TABLE_NAME is required for STORE=dynamodb".into());
        }
        (StoreKind::Embedded, _, _) => Arc::new(
            EmbeddedStore::open(&config.data_dir).map_err(|e| format!("embedded store: {e}"))?,
        ),
    };
    let (mailer, outbox): (Arc<dyn Mailer>, Option<Outbox>) = match (config.mailer, &sdk) {
        (MailerKind::Ses, Some(sdk)) => {
            // Functions that never send mail do not need MAIL_FROM; they never call this.
            let from = config.mail_from.clone().unwrap_or_default();
            let client = aws_sdk_sesv2::Client::new(sdk);
            (
                Arc::new(SesMailer::new(
                    client,
                    from,
                    config.ses_configuration_set.clone(),
                )),
                None,
            )
        }
        (MailerKind::Ses, None) => return Err("SES mailer without AWS configuration".into()),
        (MailerKind::Outbox, _) => {
            let outbox =
                Outbox::open(&config.data_dir, echo_mail).map_err(|e| format!("outbox: {e}"))?;
            (Arc::new(outbox.clone()), Some(outbox))
        }
    };
    Ok(Backends {
        store,
        mailer,
        outbox,
    })
}
