//! Logs and metrics. On Lambda every log line is one JSON object carrying the request's ids,
//! route and function; `make run` writes readable lines (`LOG_FORMAT=json` switches either).
//! Metrics are CloudWatch Embedded Metric Format documents written as log lines at the end of a
//! request: no API call, no added latency. No line ever holds a body, code, token, key or
//! address (string values that look like an address are masked as a last line of defence).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "ContactChannels";

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per event (`make run`'s default).
    Text,
    /// One JSON object per line, and EMF metrics (Lambda's default).
    Json,
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();
static FUNCTION: OnceLock<&'static str> = OnceLock::new();
static COLD: AtomicBool = AtomicBool::new(true);

/// Installs the process's subscriber. `function` names the process in every line and is the
/// `Function` dimension of its metrics (`create`, …, or `local`). `with_time` is off on
/// Lambda, where CloudWatch stamps every line itself.
pub fn init(format: LogFormat, with_time: bool, function: &'static str) {
    let _ = FORMAT.set(format);
    let _ = FUNCTION.set(function);
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match (format, with_time) {
        (LogFormat::Json, _) => install(
            builder.event_format(JsonLines { with_time }).finish(),
            filter,
        ),
        (LogFormat::Text, true) => install(builder.finish(), filter),
        (LogFormat::Text, false) => install(builder.without_time().finish(), filter),
    }
}

/// `RUST_LOG` as a level and `target=level` directives (`info`, `warn,contact_channels=debug`);
/// `info` when unset or malformed. Deliberately not `EnvFilter`: its span and field matching
/// links a regex engine into every function (hundreds of KB of each binary) for a feature a
/// service log level does not need.
fn log_filter(directives: Option<&str>) -> Targets {
    directives
        .and_then(|d| d.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

fn install<S>(subscriber: S, filter: Targets)
where
    S: Subscriber + Send + Sync + for<'a> LookupSpan<'a>,
{
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // Already installed (tests start several services in one process): keep the first.
    let _ = subscriber.with(filter).try_init();
}

fn json_enabled() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

fn function() -> &'static str {
    FUNCTION.get().copied().unwrap_or("unknown")
}

/// The ids the platform gives a request, put into the request's extensions by the Lambda entry
/// point (the local server has none).
#[derive(Debug, Clone, Default)]
pub struct InvocationIds {
    /// The Lambda request id (`requestId` of the platform's own log lines).
    pub request_id: Option<String>,
    /// API Gateway's request id (`$context.requestId` of its access log).
    pub apigw_request_id: Option<String>,
    /// The X-Ray trace id, if tracing is on.
    pub xray_trace_id: Option<String>,
    /// The deployed function's name.
    pub function_name: Option<String>,
}

/// The counters of CloudWatch metrics (namespace [`NAMESPACE`], dimensions `Function` and
/// `Route`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // Each variant is the metric it is named after.
pub enum Metric {
    VerificationMailSent,
    MailDeliveryFailed,
    VerificationSucceeded,
    VerificationIncorrect,
    VerificationBurned,
    VerificationExpired,
    RateLimited,
    DynamoDbRequests,
    ConflictRetries,
}

impl Metric {
    /// The metric's name in CloudWatch.
    pub fn name(self) -> &'static str {
        match self {
            Metric::VerificationMailSent => "VerificationMailSent",
            Metric::MailDeliveryFailed => "MailDeliveryFailed",
            Metric::VerificationSucceeded => "VerificationSucceeded",
            Metric::VerificationIncorrect => "VerificationIncorrect",
            Metric::VerificationBurned => "VerificationBurned",
            Metric::VerificationExpired => "VerificationExpired",
            Metric::RateLimited => "RateLimited",
            Metric::DynamoDbRequests => "DynamoDbRequests",
            Metric::ConflictRetries => "ConflictRetries",
        }
    }
}

/// The request being served, as the log formatter and the counters see it.
struct Scope {
    ids: InvocationIds,
    route: &'static str,
    channel_id: Option<String>,
    cold_start: bool,
    counts: Mutex<Vec<Count>>,
}

/// One counter, optionally broken down by one more dimension (`Strategy`, `Limit`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Count {
    metric: Metric,
    by: Option<(&'static str, &'static str)>,
    value: u64,
}

tokio::task_local! {
    static SCOPE: Arc<Scope>;
}

/// Runs `request` as one request of `route` (on the channel `channel_id`, if it names one): its
/// log lines carry the ids, and its counters are gathered for [`request_done`]. The first
/// request of a process is its cold start.
pub async fn scoped<T>(
    ids: InvocationIds,
    route: &'static str,
    channel_id: Option<String>,
    request: impl Future<Output = T>,
) -> T {
    let scope = Arc::new(Scope {
        ids,
        route,
        channel_id,
        cold_start: COLD.swap(false, Ordering::Relaxed),
        counts: Mutex::new(Vec::new()),
    });
    SCOPE.scope(scope, request).await
}

/// Adds one to `metric` for the current request (nothing outside a request).
pub fn count(metric: Metric) {
    add(metric, None);
}

/// Adds one to `metric` and to its breakdown `dimension = value`.
pub fn count_by(metric: Metric, dimension: &'static str, value: &'static str) {
    add(metric, Some((dimension, value)));
}

fn add(metric: Metric, by: Option<(&'static str, &'static str)>) {
    let _ = SCOPE.try_with(|scope| {
        if let Ok(mut counts) = scope.counts.lock() {
            match counts.iter_mut().find(|c| c.metric == metric && c.by == by) {
                Some(c) => c.value += 1,
                None => counts.push(Count {
                    metric,
                    by,
                    value: 1,
                }),
            }
        }
    });
}

/// Ends the current request: one log line (method, status, latency, error code) and, in JSON
/// mode, its metrics as EMF documents on stdout.
pub fn request_done(method: &str, status: u16, error_code: Option<&str>, latency: Duration) {
    let millis = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    match error_code {
        Some(code) if status >= 500 => {
            tracing::error!(
                method,
                status,
                latency_ms = millis,
                error_code = code,
                "request"
            )
        }
        Some(code) => {
            tracing::info!(
                method,
                status,
                latency_ms = millis,
                error_code = code,
                "request"
            )
        }
        None => tracing::info!(method, status, latency_ms = millis, "request"),
    }
    if !json_enabled() {
        return;
    }
    let _ = SCOPE.try_with(|scope| {
        let counts = scope.counts.lock().map(|c| c.clone()).unwrap_or_default();
        let mut out = std::io::stdout().lock();
        for doc in emf_documents(function(), scope.route, &counts, millis, now_millis()) {
            let _ = writeln!(out, "{doc}");
        }
    });
}

fn now_millis() -> i64 {
    crate::domain::now_millis()
}

/// The EMF documents of one request: the plain counters, `DynamoDbRequests`,
/// `ConflictRetries` (0 included, so their average is "per call") and `Latency` in one
/// document; each breakdown (`Strategy`, `Limit`) in one more, which also feeds the total.
fn emf_documents(
    function: &str,
    route: &str,
    counts: &[Count],
    latency_ms: u64,
    timestamp: i64,
) -> Vec<Value> {
    let base = [["Function", "Route"]];
    let mut main = Map::new();
    let mut metrics = vec![json!({ "Name": "Latency", "Unit": "Milliseconds" })];
    main.insert("Latency".into(), json!(latency_ms));
    for always in [Metric::DynamoDbRequests, Metric::ConflictRetries] {
        main.insert(always.name().into(), json!(0));
    }
    for c in counts.iter().filter(|c| c.by.is_none()) {
        main.insert(c.metric.name().into(), json!(c.value));
    }
    for name in main.keys().filter(|k| *k != "Latency") {
        metrics.push(json!({ "Name": name, "Unit": "Count" }));
    }
    let document = |dimensions: Value, metrics: Vec<Value>, mut values: Map<String, Value>| {
        values.insert("Function".into(), json!(function));
        values.insert("Route".into(), json!(route));
        values.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": dimensions,
                    "Metrics": metrics,
                }],
            }),
        );
        Value::Object(values)
    };
    let mut docs = vec![document(json!(base), metrics, main)];
    for c in counts {
        let Some((dimension, value)) = c.by else {
            continue;
        };
        let mut values = Map::new();
        values.insert(c.metric.name().into(), json!(c.value));
        values.insert(dimension.into(), json!(value));
        let dimensions = json!([["Function", "Route"], ["Function", "Route", dimension]]);
        let metrics = vec![json!({ "Name": c.metric.name(), "Unit": "Count" })];
        docs.push(document(dimensions, metrics, values));
    }
    docs
}

/// One JSON object per event: level, message, target, the event's fields and the request's
/// ids, route, function and cold-start flag.
struct JsonLines {
    with_time: bool,
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        if self.with_time {
            line.insert("timestamp".into(), json!(now_millis()));
        }
        line.insert("level".into(), json!(event.metadata().level().as_str()));
        line.insert("target".into(), json!(event.metadata().target()));
        line.insert("function".into(), json!(function()));
        let _ = SCOPE.try_with(|scope| {
            let ids = &scope.ids;
            for (key, value) in [
                ("request_id", &ids.request_id),
                ("apigw_request_id", &ids.apigw_request_id),
                ("xray_trace_id", &ids.xray_trace_id),
                ("function_name", &ids.function_name),
            ] {
                if let Some(value) = value {
                    line.insert(key.into(), json!(value));
                }
            }
            line.insert("route".into(), json!(scope.route));
            if let Some(channel) = &scope.channel_id {
                line.insert("channel_id".into(), json!(channel));
            }
            line.insert("cold_start".into(), json!(scope.cold_start));
        });
        event.record(&mut Fields(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Collects an event's fields into the line, masking anything shaped like an address.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let value = mask_addresses(value).into_owned();
        self.0.insert(field.name().into(), Value::String(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), json!(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), json!(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), json!(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), json!(value));
    }
}

/// `…@….…` words (an address, whatever put it there: an AWS error message, say) become
/// `[address]`.
fn mask_addresses(text: &str) -> Cow<'_, str> {
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let boundary = |c: char| c.is_whitespace() || "\"'<>()[]{},;:=`".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let start = rest[..at].rfind(boundary).map_or(0, |i| i + 1);
        let after = &rest[at + 1..];
        let end = after.find(boundary).map_or(after.len(), |i| i);
        let domain = after[..end].trim_end_matches('.');
        if start < at && domain.contains('.') {
            out.push_str(&rest[..start]);
            out.push_str("[address]");
            rest = &after[domain.len()..];
        } else {
            out.push_str(&rest[..=at]);
            rest = after;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_takes_a_level_and_target_directives_and_defaults_to_info() {
        use tracing::Level;
        let on = |f: &Targets, target: &str, level: Level| f.would_enable(target, &level);
        let default = log_filter(None);
        assert!(on(&default, "contact_channels", Level::INFO));
        assert!(!on(&default, "contact_channels", Level::DEBUG));
        let mixed = log_filter(Some("warn,contact_channels=debug"));
        assert!(on(&mixed, "contact_channels::service", Level::DEBUG));
        assert!(!on(&mixed, "aws_smithy_runtime", Level::INFO));
        assert!(on(&mixed, "aws_smithy_runtime", Level::WARN));
        let malformed = log_filter(Some("contact_channels=loud"));
        assert!(on(&malformed, "x", Level::INFO) && !on(&malformed, "x", Level::DEBUG));
    }

    #[test]
    fn addresses_are_masked_and_other_at_signs_kept() {
        assert_eq!(
            mask_addresses("rejected: Email address is not verified: Bob <bob@example.com>."),
            "rejected: Email address is not verified: Bob <[address]>."
        );
        assert_eq!(
            mask_addresses("a@b.co and c@d.org"),
            "[address] and [address]"
        );
        assert_eq!(
            mask_addresses("user@host but @ alone"),
            "user@host but @ alone"
        );
        assert_eq!(mask_addresses("no at sign"), "no at sign");
    }

    /// The parts of an EMF document the specification requires.
    fn assert_valid_emf(doc: &Value) {
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].as_i64().is_some_and(|t| t > 0), "{doc}");
        let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
        assert!(!directives.is_empty());
        for d in directives {
            assert_eq!(d["Namespace"], NAMESPACE);
            for set in d["Dimensions"].as_array().expect("dimension sets") {
                let set = set.as_array().expect("a dimension set");
                assert!(!set.is_empty() && set.len() <= 30);
                for name in set {
                    assert!(doc[name.as_str().expect("name")].is_string(), "{doc}");
                }
            }
            let metrics = d["Metrics"].as_array().expect("metrics");
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for m in metrics {
                let name = m["Name"].as_str().expect("metric name");
                assert!(doc[name].is_number(), "{name} has a value: {doc}");
            }
        }
    }

    #[test]
    fn emf_documents_carry_the_counters_with_their_breakdowns() {
        let counts = vec![
            Count {
                metric: Metric::DynamoDbRequests,
                by: None,
                value: 2,
            },
            Count {
                metric: Metric::VerificationMailSent,
                by: Some(("Strategy", "email_code")),
                value: 1,
            },
        ];
        let docs = emf_documents("send-verification", "send-verification", &counts, 7, 1);
        assert_eq!(docs.len(), 2);
        for doc in &docs {
            assert_valid_emf(doc);
            assert_eq!(doc["Function"], "send-verification");
        }
        assert_eq!(docs[0]["DynamoDbRequests"], 2);
        assert_eq!(docs[0]["ConflictRetries"], 0);
        assert_eq!(docs[0]["Latency"], 7);
        assert_eq!(docs[1]["VerificationMailSent"], 1);
        assert_eq!(docs[1]["Strategy"], "email_code");
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "Route"], ["Function", "Route", "Strategy"]])
        );
    }

    #[tokio::test]
    async fn counts_belong_to_the_request_they_happen_in() {
        count(Metric::ConflictRetries); // outside a request: ignored
        let counts = scoped(InvocationIds::default(), "create", None, async {
            count(Metric::ConflictRetries);
            count(Metric::ConflictRetries);
            count_by(Metric::RateLimited, "Limit", "cooldown");
            SCOPE.with(|s| s.counts.lock().unwrap().clone())
        })
        .await;
        assert_eq!(counts.len(), 2);
        assert_eq!(counts[0].value, 2);
        assert_eq!(counts[1].by, Some(("Limit", "cooldown")));
    }
}
