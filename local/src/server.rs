//! The local server: the shared router (every route) plus the `/_dev` pages, on hyper behind
//! the connection guard of `conn`; and the `token` and `create-table` helpers of `make`.

use std::sync::Arc;

use cc_aws::jwks::HttpKeySet;
use contact_channels::Service;
use contact_channels::config::{Config, LOCAL_DEV_SERVER_KEY};
use contact_channels::domain::{UserId, now_millis};
use contact_channels::http::{Endpoint, router};
use serde_json::json;

use crate::conn::ConnLimits;
use crate::dev;

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

/// Serves the whole API and the `/_dev` routes until Ctrl-C.
pub async fn serve(config: Config) -> Result<(), String> {
    let format =
        contact_channels::config::log_format_from_env(contact_channels::config::Profile::Local);
    contact_channels::telemetry::init(format, true, "local");
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
    println!("  events:      http://{addr}/_dev/events");
    println!("  links:       callback_url http://{addr}/_dev/verify verifies in the browser");
    println!(
        "  account:     http://{addr}/_dev/account?user=alice  (the TypeScript SDK's example page)"
    );
    let key_set = config.jwt.jwks_url.clone().map(HttpKeySet::new);
    let mut service = Service::new(config, backends.store).with_mailer(backends.mailer);
    if let Some(key_set) = key_set {
        service = service.with_key_set(Arc::new(key_set));
    }
    let service = Arc::new(service);
    let app = router(service.clone(), Endpoint::ALL).merge(dev::router(
        service,
        backends.outbox,
        backends.events,
    ));
    crate::conn::serve(listener, app, ConnLimits::default(), async {
        let _ = tokio::signal::ctrl_c().await;
        println!("shutting down");
    })
    .await;
    Ok(())
}
