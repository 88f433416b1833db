//! The lifecycle-event publisher (docs/events.md): DynamoDB stream records of the table in,
//! `PutEvents` to the bus out, partial failures back to Lambda as `batchItemFailures`.
//!
//! Its own crate, like `cc-ses`, so that only `cc-events` links the EventBridge client and the
//! Lambda event types of streams.

pub mod stream;

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use contact_channels::config::EventsConfig;
use contact_channels::events::{Event, SOURCE};

/// PutEvents takes at most 10 entries a call.
pub const MAX_ENTRIES: usize = 10;

/// Publishes the events of stream batches to one bus.
#[derive(Clone)]
pub struct Publisher {
    client: Client,
    bus: String,
    max_attempts: u32,
}

impl Publisher {
    /// Publishes to `bus` through `client`; `max_attempts` is `MAX_CODE_ATTEMPTS`.
    pub fn new(client: Client, bus: impl Into<String>, max_attempts: u32) -> Self {
        Publisher {
            client,
            bus: bus.into(),
            max_attempts,
        }
    }

    fn entry(&self, event: &Event) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(event.detail_type.as_str())
            .detail(event.detail_json())
            .time(DateTime::from_millis(event.detail.occurred_at_millis))
            .build()
    }

    /// Publishes one batch of ≤ 10 entries; the sequence numbers of the records whose entries
    /// failed (all of them when the call itself failed).
    async fn put(&self, chunk: &[(&str, &Event)]) -> Vec<String> {
        let entries = chunk.iter().map(|(_, e)| self.entry(e)).collect();
        let all = || chunk.iter().map(|(seq, _)| (*seq).to_owned()).collect();
        match self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
        {
            Err(e) => {
                tracing::error!(error = %aws_sdk_eventbridge::error::DisplayErrorContext(&e), "PutEvents failed");
                all()
            }
            Ok(out) if out.failed_entry_count() > 0 => {
                let results = out.entries();
                let mut failed: Vec<String> = Vec::new();
                for (i, (seq, _)) in chunk.iter().enumerate() {
                    // A result list shorter than the request is a failure of what it lacks.
                    let code = match results.get(i) {
                        Some(r) => r.error_code().map(str::to_owned),
                        None => Some("MissingResult".to_owned()),
                    };
                    if let Some(code) = code {
                        tracing::warn!(sequence_number = %seq, error_code = %code, "event not accepted");
                        if !failed.iter().any(|f| f == seq) {
                            failed.push((*seq).to_owned());
                        }
                    }
                }
                if failed.is_empty() {
                    // FailedEntryCount > 0 with no entry marked: fail the whole chunk.
                    return all();
                }
                failed
            }
            Ok(_) => Vec::new(),
        }
    }

    /// Handles one stream batch: decodes it, publishes its events in order in calls of ≤ 10
    /// entries, and answers the records to retry. It stops at the first failure: Lambda
    /// resumes from the lowest failed sequence number, so later records come again in order.
    pub async fn handle(&self, payload: &Value) -> DynamoDbEventResponse {
        let batch = stream::decode_batch(payload, self.max_attempts);
        let events: Vec<(&str, &Event)> = batch
            .records
            .iter()
            .flat_map(|r| r.events.iter().map(|e| (r.sequence_number.as_str(), e)))
            .collect();
        let mut failed = Vec::new();
        for chunk in events.chunks(MAX_ENTRIES) {
            failed = self.put(chunk).await;
            if !failed.is_empty() {
                break;
            }
        }
        if failed.is_empty()
            && let Some(seq) = batch.failed
        {
            failed.push(seq);
        }
        tracing::info!(
            records = batch.records.len(),
            events = events.len(),
            failed = failed.len(),
            "stream batch handled"
        );
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = failed
            .into_iter()
            .map(|seq| {
                let mut f = DynamoDbBatchItemFailure::default();
                f.item_identifier = Some(seq);
                f
            })
            .collect();
        response
    }
}

/// Cold start of `cc-events`: configuration and the EventBridge client once, then one
/// [`Publisher::handle`] per batch. A configuration problem ends the process with one line.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    // JSON on Lambda like every function (LoggingConfig LogFormat: JSON); LOG_FORMAT switches.
    let format =
        contact_channels::config::log_format_from_env(contact_channels::config::Profile::Lambda {
            sends_mail: false,
        });
    contact_channels::telemetry::init(format, false, "events");
    let config = match EventsConfig::from_env() {
        Ok(config) => config,
        Err(e) => cc_aws::lambda::init_failed("Runtime.ConfigError", e.to_string()).await,
    };
    let sdk = cc_aws::sdk::aws_config().await;
    let publisher = Publisher::new(
        Client::new(&sdk),
        config.event_bus_name,
        config.max_code_attempts,
    );
    let publisher = &publisher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, lambda_runtime::Error>(publisher.handle(&event.payload).await)
    }))
    .await
}
