//! The HTTP/1.1 server: reads each body up to the contract's limit, hands API routes to the
//! shared `App`, and serves the mailbox routes itself.

use std::convert::Infallible;
use std::sync::Arc;

use crate::outbox::Outbox;
use bytes::Bytes;
use contact_channels::config::{Config, LOCAL_DEV_SERVER_KEY};
use contact_channels::domain::{UserId, now_millis};
use contact_channels::http::{MAX_BODY_BYTES, Route};
use contact_channels::{ApiError, App};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::{dev_verify, mailbox};

/// Mints an HS256 client token for `user` with the configured (or dev) secret.
pub fn mint_token(config: &Config, user: &str, ttl_seconds: u64) -> Result<String, String> {
    let user = UserId::parse(user).map_err(|e| format!("user id: {e}"))?;
    let secret = config
        .jwt
        .hs256_secret
        .as_ref()
        .ok_or("JWT_HS256_SECRET is not set")?;
    let now = now_millis() / 1000;
    let mut claims = json!({ "sub": user.as_str(), "iat": now, "exp": now + i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 2) });
    if let Some(iss) = &config.jwt.issuer {
        claims["iss"] = json!(iss);
    }
    if let Some(aud) = &config.jwt.audience {
        claims["aud"] = json!(aud);
    }
    let key = jsonwebtoken::EncodingKey::from_secret(secret.expose());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).map_err(|e| e.to_string())
}

/// Creates the configured table (for `STORE=dynamodb` against a local endpoint).
pub async fn create_table(config: &Config) -> Result<String, String> {
    let table = config.table_name.clone().ok_or("TABLE_NAME is required")?;
    let sdk = cc_aws::sdk::aws_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    cc_aws::dynamo::DynamoStore::create_table(&client, &table)
        .await
        .map_err(|e| e.to_string())?;
    Ok(table)
}

struct State {
    app: App,
    outbox: Option<Outbox>,
}

pub async fn serve(config: Config) -> Result<(), String> {
    contact_channels::telemetry::init(true);
    let backends = crate::backends::build(&config, true).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", config.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server_key_hint = if config.uses_local_dev_server_key() {
        format!("x-server-key: {LOCAL_DEV_SERVER_KEY}")
    } else {
        "the key whose SHA-256 is in SERVER_KEY_SHA256".to_owned()
    };
    println!("contact-channels local API listening on http://{addr}");
    println!("  data:        {}", config.data_dir.display());
    println!("  server key:  {server_key_hint}");
    println!("  client JWT:  make token USER=alice   ->  Authorization: Bearer <token>");
    println!("  mailbox:     http://{addr}/_dev/mailbox");
    println!("  links:       callback_url http://{addr}/_dev/verify verifies in the browser");
    let key_set = config.jwt.jwks_url.clone().map(|url| {
        Arc::new(cc_aws::jwks::HttpKeySet::new(url))
            as Arc<dyn contact_channels::auth::KeySetSource>
    });
    let state = Arc::new(State {
        app: App::new(config, backends.store, backends.mailer, Route::ALL, key_set),
        outbox: backends.outbox,
    });
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => {
                println!("shutting down");
                return Ok(());
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&state, request).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
}

async fn respond(state: &State, request: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let response = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => {
            let request = http::Request::from_parts(parts, collected.to_bytes());
            if request.uri().path() == "/_dev/verify" {
                dev_verify::respond(&state.app, &request).await
            } else if request.uri().path().starts_with("/_dev/") {
                mailbox::respond(state.outbox.as_ref(), &request).await
            } else {
                state.app.handle(request).await
            }
        }
        // Over the limit: the contract's 413, before anything else is looked at.
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            ApiError::PayloadTooLarge.into_response()
        }
        Err(_) => ApiError::schema("The request body could not be read.").into_response(),
    };
    response.map(Full::new)
}
