//! Who is calling (docs/api.md §2): a server holding a key whose SHA-256 is configured, or a client
//! with a JWT (HS256 with a shared secret, or RS256/ES256 against a cached JWKS).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::http::HeaderMap;
use async_trait::async_trait;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{Mutex, RwLock};

use crate::config::JwtConfig;
use crate::domain::UserId;
use crate::error::ApiError;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An end user, who may act on its own channels only.
    Client(UserId),
    /// The app's backend, which may act on any user.
    Server,
}

/// Clock-skew leeway for `exp` and `nbf` (the contract allows at most 60 s).
const LEEWAY_SECONDS: u64 = 30;
/// An unknown `kid` triggers a JWKS refetch at most this often.
const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// Keys are refreshed after this long even when every `kid` is known, so revocations land.
const MAX_KEY_AGE: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
}

struct JwksKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct JwksState {
    keys: Vec<JwksKey>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

/// Where the JSON Web Key Set comes from: an HTTPS fetch of `JWT_JWKS_URL` in production (the
/// adapter crates), an in-memory set in tests. The authenticator caches what it returns.
#[async_trait]
pub trait KeySetSource: Send + Sync {
    /// The JWKS document, as served. The error is for the log.
    async fn fetch(&self) -> Result<Vec<u8>, String>;
}

struct Jwks {
    source: Arc<dyn KeySetSource>,
    state: RwLock<JwksState>,
    refetch_interval: Duration,
    /// Makes concurrent requests with an unknown `kid` share one fetch.
    fetching: Mutex<()>,
}

impl Jwks {
    fn find(state: &JwksState, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        state
            .keys
            .iter()
            .find(|k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid))
            .map(|k| k.key.clone())
    }

    async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        {
            let state = self.state.read().await;
            let fresh = state.fetched_at.is_some_and(|t| t.elapsed() < MAX_KEY_AGE);
            if let (true, Some(key)) = (fresh, Jwks::find(&state, kid, alg)) {
                return Some(key);
            }
        }
        let _one_fetch = self.fetching.lock().await;
        let due = {
            let state = self.state.read().await;
            if let Some(key) = Jwks::find(&state, kid, alg)
                .filter(|_| state.fetched_at.is_some_and(|t| t.elapsed() < MAX_KEY_AGE))
            {
                return Some(key);
            }
            state
                .attempted_at
                .is_none_or(|t| t.elapsed() >= self.refetch_interval)
        };
        if due {
            let fetched = self.fetch().await;
            let mut state = self.state.write().await;
            state.attempted_at = Some(Instant::now());
            match fetched {
                Ok(keys) => {
                    state.keys = keys;
                    state.fetched_at = Some(Instant::now());
                }
                Err(e) => tracing::error!(error = %e, "JWKS fetch failed; keeping the cached keys"),
            }
        }
        let state = self.state.read().await;
        Jwks::find(&state, kid, alg)
    }

    async fn fetch(&self) -> Result<Vec<JwksKey>, String> {
        let body = self.source.fetch().await?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| {
                // Each key serves exactly one algorithm, decided by its type: this is what
                // rules out algorithm confusion (an RSA key used as an HMAC secret, say).
                let alg = match &jwk.algorithm {
                    AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                        Algorithm::ES256
                    }
                    _ => return None,
                };
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some(JwksKey {
                    kid: jwk.common.key_id.clone(),
                    alg,
                    key,
                })
            })
            .collect())
    }
}

/// Checks the credentials of a request: a server key or a client JWT.
pub struct Authenticator {
    hs256: Option<DecodingKey>,
    jwks: Option<Jwks>,
    issuer: Option<String>,
    audience: Option<String>,
    server_key_digests: Vec<[u8; 32]>,
}

impl Authenticator {
    /// `key_set` serves RS256/ES256 keys (from `JWT_JWKS_URL`); without it only HS256 tokens
    /// (with `JWT_HS256_SECRET`) and server keys are accepted.
    pub fn new(
        jwt: &JwtConfig,
        server_key_digests: Vec<[u8; 32]>,
        key_set: Option<Arc<dyn KeySetSource>>,
    ) -> Self {
        let jwks = key_set.map(|source| Jwks {
            source,
            state: RwLock::new(JwksState::default()),
            refetch_interval: REFETCH_INTERVAL,
            fetching: Mutex::new(()),
        });
        Authenticator {
            hs256: jwt
                .hs256_secret
                .as_ref()
                .map(|s| DecodingKey::from_secret(s.expose())),
            jwks,
            issuer: jwt.issuer.clone(),
            audience: jwt.audience.clone(),
            server_key_digests,
        }
    }

    #[cfg(test)]
    fn with_refetch_interval(mut self, interval: Duration) -> Self {
        if let Some(jwks) = self.jwks.as_mut() {
            jwks.refetch_interval = interval;
        }
        self
    }

    /// Who is calling, or the 401 to answer.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        // A server key, when present at all, decides: never a fall-back to the JWT.
        if let Some(key) = headers.get("x-server-key") {
            return self.check_server_key(key.as_bytes());
        }
        let Some(authorization) = headers.get(::http::header::AUTHORIZATION) else {
            return Err(ApiError::Unauthenticated);
        };
        let value = authorization
            .to_str()
            .map_err(|_| ApiError::InvalidAccessToken)?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(ApiError::InvalidAccessToken),
        };
        self.check_token(token).await.map(Caller::Client)
    }

    fn check_server_key(&self, presented: &[u8]) -> Result<Caller, ApiError> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        // Compare against every digest, without stopping early, in constant time.
        let matched = self
            .server_key_digests
            .iter()
            .fold(subtle::Choice::from(0), |acc, d| acc | d.ct_eq(&digest));
        if bool::from(matched) {
            Ok(Caller::Server)
        } else {
            Err(ApiError::InvalidServerKey)
        }
    }

    async fn check_token(&self, token: &str) -> Result<UserId, ApiError> {
        // `alg: none` and unknown algorithms fail here: the header parser has no such variant.
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| ApiError::InvalidAccessToken)?;
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.clone(),
            Algorithm::RS256 | Algorithm::ES256 => match &self.jwks {
                Some(jwks) => jwks.key(header.kid.as_deref(), header.alg).await,
                None => None,
            },
            _ => None,
        }
        .ok_or(ApiError::InvalidAccessToken)?;

        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // A configured issuer or audience is also a required claim: the library checks a
        // claim's value only when the token has one, so a token that left `iss` or `aud` out
        // (or set it to null), signed by the same keys for another purpose, would get in.
        let mut required = HashSet::from(["exp".to_owned()]);
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.insert("aud".to_owned());
            }
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            required.insert("iss".to_owned());
        }
        validation.required_spec_claims = required;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|_| ApiError::InvalidAccessToken)?;
        data.claims
            .sub
            .and_then(|sub| UserId::parse(&sub).ok())
            .ok_or(ApiError::InvalidAccessToken)
    }
}

#[cfg(test)]
mod tests;

/// A key set and the private keys of the tests (RS256, `kid` `rsa-1`; the other key signs with
/// the same `kid` but is not in the set). Test doubles feature, like the in-memory store.
#[cfg(any(test, feature = "memory-store"))]
pub mod testdata {
    /// The issuer's key set.
    pub const JWKS: &str = include_str!("testdata/jwks.json");
    /// The private key of `rsa-1` in [`JWKS`] (PKCS#8 PEM).
    pub const RSA: &[u8] = include_bytes!("testdata/rsa.pem");
    /// A private key that is not in [`JWKS`].
    pub const RSA_OTHER: &[u8] = include_bytes!("testdata/rsa_other.pem");
}
