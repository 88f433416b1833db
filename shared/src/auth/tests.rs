use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;

use super::testdata::{JWKS, RSA, RSA_OTHER};
use super::*;
use crate::config::{Secret, sha256_hex};

const RSA_PUBLIC: &[u8] = include_bytes!("testdata/rsa_public.pem");
const EC: &[u8] = include_bytes!("testdata/ec.pem");
const JWKS_OTHER: &str = include_str!("testdata/jwks_other.json");

fn now() -> i64 {
    crate::domain::now_millis() / 1000
}

fn claims(sub: &str) -> serde_json::Value {
    json!({ "sub": sub, "exp": now() + 600, "iat": now() })
}

fn hs256(claims: &serde_json::Value, secret: &[u8]) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn signed(alg: Algorithm, kid: &str, pem: &[u8], claims: &serde_json::Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem).unwrap(),
        _ => EncodingKey::from_rsa_pem(pem).unwrap(),
    };
    encode(&header, claims, &key).unwrap()
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        ::http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    h
}

fn hs_only() -> Authenticator {
    let jwt = JwtConfig {
        hs256_secret: Some(Secret::new(b"s3cret".to_vec())),
        ..Default::default()
    };
    Authenticator::new(&jwt, vec![], None)
}

/// A key set that serves `body` (changeable) and counts its fetches.
struct FakeKeySet {
    hits: AtomicUsize,
    body: std::sync::Mutex<String>,
}

#[async_trait]
impl KeySetSource for FakeKeySet {
    async fn fetch(&self) -> Result<Vec<u8>, String> {
        self.hits.fetch_add(1, Ordering::SeqCst);
        Ok(self.body.lock().unwrap().clone().into_bytes())
    }
}

fn jwks_server(initial: &str) -> Arc<FakeKeySet> {
    Arc::new(FakeKeySet {
        hits: AtomicUsize::new(0),
        body: std::sync::Mutex::new(initial.to_owned()),
    })
}

fn jwks_auth(source: &Arc<FakeKeySet>, iss: Option<&str>, aud: Option<&str>) -> Authenticator {
    let jwt = JwtConfig {
        jwks_url: Some("https://issuer.example/jwks.json".into()),
        issuer: iss.map(Into::into),
        audience: aud.map(Into::into),
        hs256_secret: None,
    };
    Authenticator::new(&jwt, vec![], Some(source.clone()))
}

#[tokio::test]
async fn hs256_token_yields_its_subject() {
    let token = hs256(&claims("alice"), b"s3cret");
    let caller = hs_only().authenticate(&bearer(&token)).await;
    assert_eq!(caller, Ok(Caller::Client(UserId::parse("alice").unwrap())));
}

#[tokio::test]
async fn expired_token_is_refused() {
    let c = json!({ "sub": "alice", "exp": now() - 120 });
    let r = hs_only().authenticate(&bearer(&hs256(&c, b"s3cret"))).await;
    assert_eq!(r, Err(ApiError::InvalidAccessToken));
}

#[tokio::test]
async fn token_without_exp_is_refused() {
    let c = json!({ "sub": "alice" });
    let r = hs_only().authenticate(&bearer(&hs256(&c, b"s3cret"))).await;
    assert_eq!(r, Err(ApiError::InvalidAccessToken));
}

#[tokio::test]
async fn token_not_yet_valid_is_refused() {
    let c = json!({ "sub": "alice", "exp": now() + 600, "nbf": now() + 300 });
    let r = hs_only().authenticate(&bearer(&hs256(&c, b"s3cret"))).await;
    assert_eq!(r, Err(ApiError::InvalidAccessToken));
}

#[tokio::test]
async fn token_with_wrong_signature_is_refused() {
    let r = hs_only()
        .authenticate(&bearer(&hs256(&claims("alice"), b"other")))
        .await;
    assert_eq!(r, Err(ApiError::InvalidAccessToken));
}

#[tokio::test]
async fn alg_none_is_refused() {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let token = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims("alice").to_string())
    );
    let r = hs_only().authenticate(&bearer(&token)).await;
    assert_eq!(r, Err(ApiError::InvalidAccessToken));
}

#[tokio::test]
async fn subject_that_is_not_a_user_id_is_refused() {
    for sub in ["me", "verify", "has space", ""] {
        let r = hs_only()
            .authenticate(&bearer(&hs256(&claims(sub), b"s3cret")))
            .await;
        assert_eq!(r, Err(ApiError::InvalidAccessToken), "sub {sub:?}");
    }
}

#[tokio::test]
async fn missing_credentials_and_other_schemes() {
    assert_eq!(
        hs_only().authenticate(&HeaderMap::new()).await,
        Err(ApiError::Unauthenticated)
    );
    let mut h = HeaderMap::new();
    h.insert(::http::header::AUTHORIZATION, "Basic YTpi".parse().unwrap());
    assert_eq!(
        hs_only().authenticate(&h).await,
        Err(ApiError::InvalidAccessToken)
    );
}

#[tokio::test]
async fn server_key_is_checked_against_every_configured_digest() {
    let digests = ["old-key", "new-key"]
        .iter()
        .map(|k| <[u8; 32]>::try_from(hex::decode(sha256_hex(k.as_bytes())).unwrap()).unwrap())
        .collect();
    let auth = Authenticator::new(&JwtConfig::default(), digests, None);
    for (key, expected) in [
        ("old-key", Ok(Caller::Server)),
        ("new-key", Ok(Caller::Server)),
        ("wrong", Err(ApiError::InvalidServerKey)),
        ("", Err(ApiError::InvalidServerKey)),
    ] {
        let mut h = bearer(&hs256(&claims("alice"), b"s3cret"));
        h.insert("x-server-key", key.parse().unwrap());
        assert_eq!(auth.authenticate(&h).await, expected, "key {key:?}");
    }
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_against_the_jwks() {
    let server = jwks_server(JWKS);
    let auth = jwks_auth(&server, Some("https://issuer.example"), Some("my-app"));
    let mut c = claims("bob");
    c["iss"] = json!("https://issuer.example");
    c["aud"] = json!("my-app");
    for (alg, kid, pem) in [
        (Algorithm::RS256, "rsa-1", RSA),
        (Algorithm::ES256, "ec-1", EC),
    ] {
        let r = auth.authenticate(&bearer(&signed(alg, kid, pem, &c))).await;
        assert_eq!(
            r,
            Ok(Caller::Client(UserId::parse("bob").unwrap())),
            "{alg:?}"
        );
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "keys are cached");
}

#[tokio::test]
async fn wrong_issuer_or_audience_is_refused() {
    let server = jwks_server(JWKS);
    let auth = jwks_auth(&server, Some("https://issuer.example"), Some("my-app"));
    for (iss, aud) in [
        ("https://evil.example", "my-app"),
        ("https://issuer.example", "other"),
    ] {
        let mut c = claims("bob");
        c["iss"] = json!(iss);
        c["aud"] = json!(aud);
        let r = auth
            .authenticate(&bearer(&signed(Algorithm::RS256, "rsa-1", RSA, &c)))
            .await;
        assert_eq!(r, Err(ApiError::InvalidAccessToken), "iss {iss} aud {aud}");
    }
}

#[tokio::test]
async fn hs256_token_is_refused_when_only_jwks_is_configured() {
    let server = jwks_server(JWKS);
    let auth = jwks_auth(&server, None, None);
    let r = auth
        .authenticate(&bearer(&hs256(&claims("bob"), b"s3cret")))
        .await;
    assert_eq!(r, Err(ApiError::InvalidAccessToken));
    // Algorithm confusion: an HMAC token keyed with the RSA public key must not pass either.
    let r = auth
        .authenticate(&bearer(&hs256(&claims("bob"), RSA_PUBLIC)))
        .await;
    assert_eq!(r, Err(ApiError::InvalidAccessToken));
}

#[tokio::test]
async fn token_signed_with_a_key_not_in_the_jwks_is_refused() {
    let server = jwks_server(JWKS);
    let auth = jwks_auth(&server, None, None);
    // Right kid, wrong key.
    let r = auth
        .authenticate(&bearer(&signed(
            Algorithm::RS256,
            "rsa-1",
            RSA_OTHER,
            &claims("bob"),
        )))
        .await;
    assert_eq!(r, Err(ApiError::InvalidAccessToken));
}

#[tokio::test]
async fn unknown_kid_refetches_the_jwks_at_most_once_a_minute() {
    let server = jwks_server(JWKS);
    let auth = jwks_auth(&server, None, None);
    let rotated = signed(Algorithm::RS256, "rsa-2", RSA_OTHER, &claims("bob"));
    assert_eq!(
        auth.authenticate(&bearer(&rotated)).await,
        Err(ApiError::InvalidAccessToken)
    );
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    // The issuer rotates its keys; within the minute the unknown kid does not refetch.
    *server.body.lock().unwrap() = JWKS_OTHER.to_owned();
    assert_eq!(
        auth.authenticate(&bearer(&rotated)).await,
        Err(ApiError::InvalidAccessToken)
    );
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unknown_kid_is_found_after_a_refetch_once_the_interval_passed() {
    let server = jwks_server(JWKS);
    let auth = jwks_auth(&server, None, None).with_refetch_interval(Duration::ZERO);
    let known = signed(Algorithm::RS256, "rsa-1", RSA, &claims("bob"));
    assert!(auth.authenticate(&bearer(&known)).await.is_ok());
    *server.body.lock().unwrap() = JWKS_OTHER.to_owned();
    let rotated = signed(Algorithm::RS256, "rsa-2", RSA_OTHER, &claims("bob"));
    assert!(auth.authenticate(&bearer(&rotated)).await.is_ok());
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
}

fn hs_with(iss: Option<&str>, aud: Option<&str>) -> Authenticator {
    let jwt = JwtConfig {
        hs256_secret: Some(Secret::new(b"s3cret".to_vec())),
        issuer: iss.map(Into::into),
        audience: aud.map(Into::into),
        ..Default::default()
    };
    Authenticator::new(&jwt, vec![], None)
}

/// Claims for `bob` with `iss` and `aud` as configured, then `edit` applied.
fn claims_edited(
    edit: impl Fn(&mut serde_json::Map<String, serde_json::Value>),
) -> serde_json::Value {
    let mut c = claims("bob");
    c["iss"] = json!("https://issuer.example");
    c["aud"] = json!("my-app");
    if let Some(map) = c.as_object_mut() {
        edit(map);
    }
    c
}

/// Tokens that lack the configured `iss` or `aud`, or carry it as null or of the wrong type.
fn tokens_without_the_configured_claims() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            "no iss",
            claims_edited(|c| {
                c.remove("iss");
            }),
        ),
        (
            "no aud",
            claims_edited(|c| {
                c.remove("aud");
            }),
        ),
        (
            "iss null",
            claims_edited(|c| {
                c.insert("iss".into(), json!(null));
            }),
        ),
        (
            "aud null",
            claims_edited(|c| {
                c.insert("aud".into(), json!(null));
            }),
        ),
        (
            "iss a number",
            claims_edited(|c| {
                c.insert("iss".into(), json!(7));
            }),
        ),
        (
            "aud empty",
            claims_edited(|c| {
                c.insert("aud".into(), json!([]));
            }),
        ),
        (
            "neither",
            claims_edited(|c| {
                c.remove("iss");
                c.remove("aud");
            }),
        ),
    ]
}

#[tokio::test]
async fn hs256_token_without_the_configured_issuer_or_audience_is_refused() {
    let auth = hs_with(Some("https://issuer.example"), Some("my-app"));
    let good = hs256(&claims_edited(|_| {}), b"s3cret");
    assert_eq!(
        auth.authenticate(&bearer(&good)).await,
        Ok(Caller::Client(UserId::parse("bob").unwrap()))
    );
    for (case, c) in tokens_without_the_configured_claims() {
        let r = auth.authenticate(&bearer(&hs256(&c, b"s3cret"))).await;
        assert_eq!(r, Err(ApiError::InvalidAccessToken), "{case}");
    }
}

#[tokio::test]
async fn rs256_and_es256_tokens_without_the_configured_issuer_or_audience_are_refused() {
    let server = jwks_server(JWKS);
    let auth = jwks_auth(&server, Some("https://issuer.example"), Some("my-app"));
    for (alg, kid, pem) in [
        (Algorithm::RS256, "rsa-1", RSA),
        (Algorithm::ES256, "ec-1", EC),
    ] {
        let good = signed(alg, kid, pem, &claims_edited(|_| {}));
        assert!(auth.authenticate(&bearer(&good)).await.is_ok(), "{alg:?}");
        for (case, c) in tokens_without_the_configured_claims() {
            let r = auth.authenticate(&bearer(&signed(alg, kid, pem, &c))).await;
            assert_eq!(r, Err(ApiError::InvalidAccessToken), "{alg:?} {case}");
        }
    }
}

#[tokio::test]
async fn an_issuer_alone_is_required_and_an_audience_alone_is_required() {
    let issuer_only = hs_with(Some("https://issuer.example"), None);
    let no_iss = claims_edited(|c| {
        c.remove("iss");
    });
    assert_eq!(
        issuer_only
            .authenticate(&bearer(&hs256(&no_iss, b"s3cret")))
            .await,
        Err(ApiError::InvalidAccessToken)
    );
    let audience_only = hs_with(None, Some("my-app"));
    let no_aud = claims_edited(|c| {
        c.remove("aud");
    });
    assert_eq!(
        audience_only
            .authenticate(&bearer(&hs256(&no_aud, b"s3cret")))
            .await,
        Err(ApiError::InvalidAccessToken)
    );
    // Unconfigured claims stay optional.
    assert!(
        hs_only()
            .authenticate(&bearer(&hs256(&claims("bob"), b"s3cret")))
            .await
            .is_ok()
    );
}
