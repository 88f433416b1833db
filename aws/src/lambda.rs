//! The Lambda entry point: configuration and adapters built once at cold start, then the shared
//! HTTP layer handed to the runtime. Each function binary calls [`run`] with its [`Function`].

use std::sync::Arc;

use contact_channels::Service;
use contact_channels::config::{Config, Profile};
use contact_channels::http::{Route, router};
use contact_channels::mail::Mailer;

use crate::dynamo::DynamoStore;
use crate::jwks::HttpKeySet;

/// The six functions of the deployment and the routes each serves (API.md §5).
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
    /// The routes this function serves.
    pub fn routes(self) -> &'static [Route] {
        match self {
            Function::Create => &[Route::Create],
            Function::List => &[Route::List, Route::Read],
            Function::Patch => &[Route::Update],
            Function::Delete => &[Route::Delete],
            Function::SendVerification => &[Route::SendVerification],
            Function::Attempt => &[
                Route::AttemptVerification,
                Route::VerifyLink,
                Route::CheckLink,
            ],
        }
    }

    /// Whether it sends mail (and so needs `MAIL_FROM` and an SES client).
    pub fn sends_mail(self) -> bool {
        self == Function::SendVerification
    }
}

/// Logs an init failure and reports it to the Lambda Runtime API (`/runtime/init/error`), so
/// the invoker sees the reason instead of a bare exit. The Runtime API address is the
/// platform's own variable, read here exactly as the runtime crate reads it.
pub async fn init_failed(kind: &str, message: String) -> lambda_http::Error {
    tracing::error!("{message}");
    if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
        let url = format!("http://{api}/2018-06-01/runtime/init/error");
        let body =
            serde_json::json!({ "errorType": kind, "errorMessage": message, "stackTrace": [] });
        let sent = reqwest::Client::new()
            .post(url)
            .header("Lambda-Runtime-Function-Error-Type", kind)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        if let Err(e) = sent {
            tracing::error!(error = %e, "could not report the init error to the Runtime API");
        }
    }
    message.into()
}

/// Builds the mailer of the one function that sends mail, from the shared SDK config.
pub type MailerFactory = fn(&aws_config::SdkConfig, &Config) -> Arc<dyn Mailer>;

/// Cold start: config, adapters, then the shared router handed to the runtime. A configuration
/// problem ends the process with one log line naming every missing or malformed variable.
pub async fn run(
    function: Function,
    mailer: Option<MailerFactory>,
) -> Result<(), lambda_http::Error> {
    contact_channels::telemetry::init(false);
    let config = match Config::from_env(Profile::Lambda {
        sends_mail: function.sends_mail(),
    }) {
        Ok(config) => config,
        Err(e) => return Err(init_failed("Runtime.ConfigError", e.to_string()).await),
    };
    let sdk = crate::sdk::aws_config().await;
    let Some(table) = config.table_name.clone() else {
        return Err(init_failed("Runtime.ConfigError", "TABLE_NAME is required".into()).await);
    };
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table));
    let mailer = mailer.map(|make| make(&sdk, &config));
    let key_set = config.jwt.jwks_url.clone().map(HttpKeySet::new);
    let mut service = Service::new(config, store);
    if let Some(mailer) = mailer {
        service = service.with_mailer(mailer);
    }
    if let Some(key_set) = key_set {
        service = service.with_key_set(Arc::new(key_set));
    }
    lambda_http::run(router(Arc::new(service), function.routes())).await
}
