//! Builds the store and mailer a process was configured with, once, at start-up.

use std::sync::Arc;

use crate::config::{Config, MailerKind, StoreKind};
use crate::embedded::EmbeddedStore;
use crate::mail::Mailer;
use crate::outbox::Outbox;
use crate::store::ChannelStore;

pub struct Backends {
    pub store: Arc<dyn ChannelStore>,
    pub mailer: Arc<dyn Mailer>,
    /// The outbox, when mail goes there, for the local mailbox routes.
    pub outbox: Option<Outbox>,
}

/// `echo_mail` prints outbox mail to standard output (local mode only: on Lambda that would
/// put codes into the logs).
pub async fn build(config: &Config, echo_mail: bool) -> Result<Backends, String> {
    let store: Arc<dyn ChannelStore> = match config.store {
        StoreKind::Embedded => Arc::new(
            EmbeddedStore::open(&config.data_dir).map_err(|e| format!("embedded store: {e}"))?,
        ),
    };
    let (mailer, outbox): (Arc<dyn Mailer>, Option<Outbox>) = match config.mailer {
        MailerKind::Outbox => {
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
