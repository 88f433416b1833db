//! The Lambda entry point: configuration and adapters built once at cold start, then the shared
//! HTTP layer handed to the runtime. Each function binary calls [`run`] with its [`Function`].

use std::sync::Arc;

use axum::middleware;
use contact_channels::Service;
use contact_channels::config::{AcceptedSecret, Config, Profile, Secret};
use contact_channels::http::{Endpoint, Route, router};
use contact_channels::mail::Mailer;
use contact_channels::store::ChannelStore;
use contact_channels::telemetry::InvocationIds;

use crate::dynamo::DynamoStore;
use crate::jwks::HttpKeySet;

/// The six functions of the deployment and the routes each serves (docs/api.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // Each variant is the function of the template it is named after.
pub enum Function {
    Create,
    List,
    Patch,
    Delete,
    SendVerification,
    Attempt,
}

impl Function {
    /// The endpoints this function serves, over a service on store `S` (the binaries:
    /// `DynamoStore`). A `const fn`, so that a binary evaluates it at compile time
    /// ([`Function::binary`]) and links only its own handlers, and (the service being generic
    /// over its store) only the store operations they call.
    pub const fn endpoints<S: ChannelStore + ?Sized + 'static>(self) -> &'static [Endpoint<S>] {
        match self {
            Function::Create => const { &[Endpoint::CREATE] },
            Function::List => const { &[Endpoint::LIST, Endpoint::READ, Endpoint::OPENAPI] },
            Function::Patch => const { &[Endpoint::UPDATE] },
            Function::Delete => const { &[Endpoint::DELETE] },
            Function::SendVerification => const { &[Endpoint::SEND_VERIFICATION] },
            Function::Attempt => {
                const {
                    &[
                        Endpoint::ATTEMPT_VERIFICATION,
                        Endpoint::VERIFY_LINK,
                        Endpoint::CHECK_LINK,
                    ]
                }
            }
        }
    }

    /// The routes this function serves.
    pub fn routes(self) -> Vec<Route> {
        self.endpoints::<dyn ChannelStore>()
            .iter()
            .map(|e| e.route)
            .collect()
    }

    /// What a function binary hands to [`run`]; use it in a `const` so that the endpoints are
    /// chosen at compile time: `run(const { Function::List.binary() }, None)`.
    pub const fn binary(self) -> Binary {
        Binary {
            function: self,
            endpoints: self.endpoints(),
        }
    }

    /// Its name in log lines and the `Function` dimension of its metrics.
    pub fn name(self) -> &'static str {
        match self {
            Function::Create => "create",
            Function::List => "list",
            Function::Patch => "patch",
            Function::Delete => "delete",
            Function::SendVerification => "send-verification",
            Function::Attempt => "attempt",
        }
    }

    /// Whether it sends mail (and so needs `MAIL_FROM` and an SES client).
    pub fn sends_mail(self) -> bool {
        self == Function::SendVerification
    }
}

/// A function and its endpoints, fixed when the binary is compiled ([`Function::binary`]).
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    function: Function,
    endpoints: &'static [Endpoint<DynamoStore>],
}

/// Logs an init failure and reports it to the Lambda Runtime API (`/runtime/init/error`), so
/// the invoker sees the reason instead of a bare exit. The Runtime API address is the
/// platform's own variable, read here exactly as the runtime crate reads it.
pub async fn init_failed(kind: &str, message: String) -> ! {
    tracing::error!("{message}");
    if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API")
        && let Err(e) = report_init_error(&api, kind, &message).await
    {
        tracing::error!(error = %e, "could not report the init error to the Runtime API");
    }
    // Ended here rather than by returning the error from `main`, which would print it once more
    // as a line that is not JSON.
    std::process::exit(1)
}

/// Posts the error to `/runtime/init/error` with the runtime crate's own Runtime API client
/// (plain HTTP on the sandbox's loopback: no second HTTP stack in the binary).
async fn report_init_error(api: &str, kind: &str, message: &str) -> Result<(), String> {
    use lambda_runtime_api_client::{PooledClient, body::Body, build_request};
    let endpoint = http::Uri::try_from(api).map_err(|e| e.to_string())?;
    let body = serde_json::json!({ "errorType": kind, "errorMessage": message, "stackTrace": [] });
    let request = build_request()
        .method(http::Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header("Lambda-Runtime-Function-Error-Type", kind)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .map_err(|e| e.to_string())?;
    let client = PooledClient::builder().with_endpoint(endpoint).build();
    let response = client.call(request).await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    Ok(())
}

/// Builds the mailer of the one function that sends mail, from the shared SDK config.
pub type MailerFactory = fn(&aws_config::SdkConfig, &Config) -> Arc<dyn Mailer>;

/// Cold start: config, secrets, adapters, then the shared router handed to the runtime. A
/// configuration problem ends the process with one log line naming every missing or malformed
/// variable.
pub async fn run(binary: Binary, mailer: Option<MailerFactory>) -> Result<(), lambda_http::Error> {
    let Binary {
        function,
        endpoints,
    } = binary;
    let format = contact_channels::config::log_format_from_env(Profile::Lambda {
        sends_mail: function.sends_mail(),
    });
    contact_channels::telemetry::init(format, false, function.name());
    let mut config = match Config::from_env(Profile::Lambda {
        sends_mail: function.sends_mail(),
    }) {
        Ok(config) => config,
        Err(e) => init_failed("Runtime.ConfigError", e.to_string()).await,
    };
    let sdk = crate::sdk::aws_config().await;
    let Some(table) = config.table_name.clone() else {
        init_failed("Runtime.ConfigError", "TABLE_NAME is required".into()).await;
    };
    let dynamodb = crate::sdk::dynamodb_client(&sdk);
    // The secrets and the first DynamoDB connection (its TLS handshake is most of a cold
    // request's time) are set up side by side: Init waits for the slower of the two, and the
    // first request finds the connection open.
    let warm_up = warm_up(&dynamodb, &table, config.dynamodb_warm_up);
    let (secrets, ()) = tokio::join!(fetch_secrets(&sdk, &config), warm_up);
    let fetched = secrets.and_then(|(verification, jwt)| {
        config
            .use_fetched_secrets(verification, jwt)
            .map_err(|e| e.to_string())
    });
    if let Err(e) = fetched {
        init_failed("Runtime.ConfigError", e).await;
    }
    let store = Arc::new(DynamoStore::new(dynamodb, table));
    let mailer = mailer.map(|make| make(&sdk, &config));
    let key_set = config.jwt.jwks_url.clone().map(HttpKeySet::new);
    let mut service = Service::new(config, store);
    if let Some(mailer) = mailer {
        service = service.with_mailer(mailer);
    }
    if let Some(key_set) = key_set {
        service = service.with_key_set(Arc::new(key_set));
    }
    let app = router(Arc::new(service), endpoints).layer(middleware::map_request(with_ids));
    if let Err(e) = lambda_http::run(app).await {
        tracing::error!(error = %e, "the Lambda runtime stopped");
        std::process::exit(1);
    }
    Ok(())
}

type FetchedSecrets = (Option<(Secret, Vec<AcceptedSecret>)>, Option<Secret>);

/// Reads the secrets the configuration names by ARN (none: nothing to do, no client built).
async fn fetch_secrets(
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<FetchedSecrets, String> {
    let arns = &config.secret_arns;
    if arns.verification.is_none() && arns.jwt_hs256.is_none() {
        return Ok((None, None));
    }
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let verification = match &arns.verification {
        Some(arn) => Some(
            crate::secrets::verification(&client, arn, config.verification_lifetime_millis())
                .await
                .map_err(|e| format!("VERIFICATION_SECRET_ARN: {e}"))?,
        ),
        None => None,
    };
    let jwt = match &arns.jwt_hs256 {
        Some(arn) => Some(
            crate::secrets::current(&client, arn)
                .await
                .map_err(|e| format!("JWT_HS256_SECRET_ARN: {e}"))?,
        ),
        None => None,
    };
    Ok((verification, jwt))
}

/// The partition and sort key of the warm-up read. Create, which otherwise only writes, is
/// granted `GetItem` on this partition alone (template.yaml, `dynamodb:LeadingKeys`).
pub const WARM_UP_KEY: &str = "WARM-UP";

/// One cheap read of a key that never exists, to open the pooled DynamoDB connection before the
/// first request. A failure is only logged: the first request then pays the handshake.
async fn warm_up(client: &aws_sdk_dynamodb::Client, table: &str, enabled: bool) {
    use aws_sdk_dynamodb::types::AttributeValue;
    if !enabled {
        return;
    }
    let read = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(WARM_UP_KEY.into()))
        .key("sk", AttributeValue::S(WARM_UP_KEY.into()))
        .projection_expression("pk")
        .send()
        .await;
    if let Err(e) = read {
        use aws_sdk_dynamodb::error::ProvideErrorMetadata;
        tracing::warn!(
            error = e.code().unwrap_or("no service code"),
            "DynamoDB warm-up read failed"
        );
    }
}

/// Puts the platform's ids (Lambda request id, API Gateway request id, trace id, function
/// name) where the shared HTTP layer's telemetry finds them.
async fn with_ids(mut request: axum::extract::Request) -> axum::extract::Request {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let lambda = request.lambda_context_ref();
    let mut ids = InvocationIds {
        request_id: lambda.map(|c| c.request_id.clone()),
        xray_trace_id: lambda.and_then(|c| c.xray_trace_id.clone()),
        function_name: lambda.map(|c| c.env_config.function_name.clone()),
        apigw_request_id: None,
    };
    #[allow(irrefutable_let_patterns)] // one variant with this crate's features
    if let Some(RequestContext::ApiGatewayV2(c)) = request.request_context_ref() {
        ids.apigw_request_id = c.request_id.clone();
    }
    request.extensions_mut().insert(ids);
    request
}
