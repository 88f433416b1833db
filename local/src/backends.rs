//! The store and mailer `make run` was configured with: embedded and outbox by default, or
//! DynamoDB and SES (`STORE=dynamodb`, `MAILER=ses`) against whatever endpoint the AWS variables
//! name, built once at start-up.

use std::sync::Arc;

use cc_aws::dynamo::DynamoStore;
use cc_ses::SesMailer;
use contact_channels::config::{Config, MailerKind, StoreKind};
use contact_channels::mail::Mailer;
use contact_channels::store::ChannelStore;

use crate::embedded::EmbeddedStore;
use crate::events::EventLog;
use crate::outbox::Outbox;

/// The adapters of the local server.
pub struct Backends {
    /// Where channels are kept.
    pub store: Arc<dyn ChannelStore>,
    /// Where mail goes.
    pub mailer: Arc<dyn Mailer>,
    /// The outbox, when mail goes there, for the local mailbox routes.
    pub outbox: Option<Outbox>,
    /// The lifecycle events of the embedded store, for `/_dev/events` (on DynamoDB they come
    /// from the table's stream instead).
    pub events: Option<EventLog>,
}

/// `echo_mail` prints outbox mail to standard output (local mode only: elsewhere that would
/// put codes into the logs).
pub async fn build(config: &Config, echo_mail: bool) -> Result<Backends, String> {
    let needs_aws = config.store == StoreKind::DynamoDb || config.mailer == MailerKind::Ses;
    let sdk = if needs_aws {
        Some(cc_aws::sdk::aws_config().await)
    } else {
        None
    };
    let mut events = None;
    let store: Arc<dyn ChannelStore> = match (config.store, &sdk, &config.table_name) {
        (StoreKind::DynamoDb, Some(sdk), Some(table)) => Arc::new(DynamoStore::new(
            cc_aws::sdk::dynamodb_client(sdk),
            table.clone(),
        )),
        (StoreKind::DynamoDb, _, _) => {
            return Err("TABLE_NAME is required for STORE=dynamodb".into());
        }
        (StoreKind::Embedded, _, _) => {
            let log = EventLog::open(&config.data_dir, config.limits.max_code_attempts)
                .map_err(|e| format!("event log: {e}"))?;
            events = Some(log.clone());
            Arc::new(
                EmbeddedStore::open(&config.data_dir)
                    .map_err(|e| format!("embedded store: {e}"))?
                    .with_events(log),
            )
        }
    };
    let (mailer, outbox): (Arc<dyn Mailer>, Option<Outbox>) = match (config.mailer, &sdk) {
        (MailerKind::Ses, Some(sdk)) => {
            let from = config.mail_from.clone().unwrap_or_default();
            let mailer =
                SesMailer::from_sdk_config(sdk, from, config.ses_configuration_set.clone());
            (Arc::new(mailer), None)
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
        events,
    })
}
