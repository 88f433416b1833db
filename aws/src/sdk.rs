//! The shared AWS SDK configuration, loaded once per process, so `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SESV2` … work as the SDK
//! documents, for every client built from it.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;

/// SDK defaults plus timeouts, so a hung call becomes an error the caller sees (a 500, or a
/// 502 for mail) instead of a Lambda timeout.
pub async fn aws_config() -> aws_config::SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(12))
        .build();
    // Throttling and transient errors: the SDK's standard mode retries with exponential
    // backoff and full jitter, at most this many attempts in all. (Transaction conflicts come
    // back as cancellations and are retried by the service, also with jitter and a bound.)
    let retries = aws_config::retry::RetryConfig::standard().with_max_attempts(3);
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(retries)
        .load()
        .await
}

/// Counts every DynamoDB request put on the wire (the SDK's own retries included) into the
/// current request's `DynamoDbRequests` metric. The interceptor runs inside the request's
/// task, where the telemetry scope lives.
#[derive(Debug, Clone, Copy)]
pub struct CountDynamoDbRequests;

impl aws_sdk_dynamodb::config::Intercept for CountDynamoDbRequests {
    fn name(&self) -> &'static str {
        "CountDynamoDbRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        contact_channels::telemetry::count(contact_channels::telemetry::Metric::DynamoDbRequests);
        Ok(())
    }
}

/// The DynamoDB client of a process, from the shared config, with its requests counted.
pub fn dynamodb_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(CountDynamoDbRequests)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// An error with its causes: the SDK's errors say "service error" or "io error" on top and the
/// reason (refused, TLS, timeout, the service's code) below.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
