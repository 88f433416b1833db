//! The JWKS fetcher: `GET JWT_JWKS_URL` over HTTPS with a short timeout. The authenticator in the
//! domain crate caches the keys and decides when to fetch again.

use std::time::Duration;

use async_trait::async_trait;
use contact_channels::auth::KeySetSource;

/// Fetches the key set of the configured issuer.
pub struct HttpKeySet {
    url: String,
    client: reqwest::Client,
}

impl HttpKeySet {
    /// A fetcher for `url`; nothing is fetched until a token needs a key.
    pub fn new(url: impl Into<String>) -> Self {
        HttpKeySet {
            url: url.into(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }
}

#[async_trait]
impl KeySetSource for HttpKeySet {
    async fn fetch(&self) -> Result<Vec<u8>, String> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .error_for_status()
            .map_err(|e| e.to_string())?;
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        Ok(body.to_vec())
    }
}
