//! The JWKS fetcher: `GET JWT_JWKS_URL` with short timeouts. The authenticator in the domain
//! crate caches the keys and decides when to fetch again.
//!
//! It is built on the AWS SDK's own HTTP stack (hyper + rustls on aws-lc), not a second HTTP
//! client: one TLS implementation is linked into the binary, and the process reads the
//! certificate store once — the SDK caches the native roots process-wide and this connector
//! takes them from that cache. Nothing is built before the first fetch, so Init does not pay
//! for it (docs: README "Performance").

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use contact_channels::auth::KeySetSource;
use http_body_util::{BodyExt, Limited};

/// A key set is a few KB; anything past this is not one (and is not read into memory).
const MAX_BODY_BYTES: usize = 256 * 1024;
/// A whole fetch, connect to last byte, within the request that needed the key.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Fetches the key set of the configured issuer.
pub struct HttpKeySet {
    url: String,
    connector: OnceLock<Connector>,
}

impl HttpKeySet {
    /// A fetcher for `url`; nothing is built or fetched until a token needs a key.
    pub fn new(url: impl Into<String>) -> Self {
        HttpKeySet {
            url: url.into(),
            connector: OnceLock::new(),
        }
    }

    fn connector(&self) -> &Connector {
        self.connector.get_or_init(|| {
            Connector::builder()
                .connector_settings(
                    HttpConnectorSettings::builder()
                        .connect_timeout(Duration::from_secs(2))
                        .read_timeout(Duration::from_secs(3))
                        .build(),
                )
                .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                .build()
        })
    }

    async fn get(&self) -> Result<Vec<u8>, String> {
        let request = HttpRequest::get(&self.url).map_err(|e| e.to_string())?;
        let response = self
            .connector()
            .call(request)
            .await
            .map_err(|e| crate::sdk::error_chain(&e))?;
        let status = response.status();
        // Redirects are not followed: an issuer's JWKS URL is its final address, and following
        // one would let whoever controls a redirect choose the keys.
        if !status.is_success() {
            return Err(format!("HTTP {}", status.as_u16()));
        }
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the key set: {e}"))?;
        Ok(body.to_bytes().to_vec())
    }
}

#[async_trait]
impl KeySetSource for HttpKeySet {
    async fn fetch(&self) -> Result<Vec<u8>, String> {
        tokio::time::timeout(FETCH_TIMEOUT, self.get())
            .await
            .map_err(|_| format!("no key set within {FETCH_TIMEOUT:?}"))?
    }
}
