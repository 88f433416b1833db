//! The Lambda adapter: API Gateway HTTP API (payload v2) events in, responses out. Each
//! function binary calls `run` with its `Function`; everything else is shared.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use lambda_http::{Body, service_fn};

use crate::app::App;
use crate::config::{Config, Profile};
use crate::http_api::Route;

/// The six functions of the deployment and the routes each serves (API.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Create,
    List,
    Patch,
    Delete,
    SendVerification,
    Attempt,
}

impl Function {
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

    pub fn sends_mail(self) -> bool {
        self == Function::SendVerification
    }
}

/// Converts a Lambda request to the shared handler's request, and the response back.
pub async fn handle(app: &App, request: lambda_http::Request) -> http::Response<Body> {
    let (parts, body) = request.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    let response = app.handle(http::Request::from_parts(parts, bytes)).await;
    let (parts, body) = response.into_parts();
    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    };
    http::Response::from_parts(parts, body)
}

/// Logs an init failure and reports it to the Lambda Runtime API (`/runtime/init/error`), so
/// the invoker sees the reason instead of a bare exit. The Runtime API address is the
/// platform's own variable, read here exactly as the runtime crate reads it.
async fn init_failed(kind: &str, message: String) -> lambda_http::Error {
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

/// Cold start: config, backends, then the runtime loop. A configuration problem ends the
/// process with one log line naming every missing or malformed variable.
pub async fn run(function: Function) -> Result<(), lambda_http::Error> {
    crate::telemetry::init(false);
    let config = match Config::from_env(Profile::Lambda {
        sends_mail: function.sends_mail(),
    }) {
        Ok(config) => config,
        Err(e) => return Err(init_failed("Runtime.ConfigError", e.to_string()).await),
    };
    let backends = match crate::backends::build(&config, false).await {
        Ok(backends) => backends,
        Err(e) => {
            return Err(init_failed("Runtime.InitError", format!("start-up failed: {e}")).await);
        }
    };
    let app = Arc::new(App::new(
        config,
        backends.store,
        backends.mailer,
        function.routes(),
    ));
    lambda_http::run(service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handle(&app, request).await) }
    }))
    .await
}
