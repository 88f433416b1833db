//! Typed configuration, read once at start-up (docs/api.md §6). Every problem is collected so that a
//! misconfigured function fails with one log line naming all of them.

use std::fmt;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::domain::callback::OriginPattern;
pub use crate::domain::secret::Secret;
use crate::telemetry::LogFormat;

/// Where a process runs decides which variables are required and which defaults apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A Lambda function; `sends_mail` is true for the one function that needs `MAIL_FROM`.
    Lambda {
        /// Whether this function sends mail.
        sends_mail: bool,
    },
    /// `make run`: everything has a development default (docs/api.md §7).
    Local,
}

/// Which store implementation a process uses (`STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The redb file under `DATA_DIR` (local only).
    Embedded,
    /// The DynamoDB table `TABLE_NAME`.
    DynamoDb,
}

/// Which mailer implementation a process uses (`MAILER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailerKind {
    /// `DATA_DIR/outbox.jsonl` and the `/_dev` mailbox (local only).
    Outbox,
    /// SES v2 from `MAIL_FROM`.
    Ses,
}

#[derive(Debug, Clone, Default)]
/// How client JWTs are checked (docs/api.md §2).
pub struct JwtConfig {
    /// `JWT_JWKS_URL`: where RS256/ES256 keys are fetched.
    pub jwks_url: Option<String>,
    /// `JWT_ISSUER`: the required `iss`.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`: the required `aud`.
    pub audience: Option<String>,
    /// `JWT_HS256_SECRET`: the shared secret of HS256 tokens (local use).
    pub hs256_secret: Option<Secret>,
}

#[derive(Debug, Clone)]
/// The limits of docs/api.md §6, each from its variable.
pub struct Limits {
    /// `CODE_TTL_SECONDS`.
    pub code_ttl_seconds: u64,
    /// `LINK_TTL_SECONDS`.
    pub link_ttl_seconds: u64,
    /// `MAX_CODE_ATTEMPTS`.
    pub max_code_attempts: u32,
    /// `SEND_COOLDOWN_SECONDS` (0 = none).
    pub send_cooldown_seconds: u64,
    /// `MAX_SENDS_PER_DAY` per recipient address.
    pub max_sends_per_day: u32,
    /// `MAX_CHANNELS_PER_USER`.
    pub max_channels_per_user: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            code_ttl_seconds: 600,
            link_ttl_seconds: 86_400,
            max_code_attempts: 5,
            send_cooldown_seconds: 30,
            max_sends_per_day: 10,
            max_channels_per_user: 50,
        }
    }
}

/// Where a Lambda function reads its secrets from (Secrets Manager ARNs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretArns {
    /// `VERIFICATION_SECRET_ARN`.
    pub verification: Option<String>,
    /// `JWT_HS256_SECRET_ARN`.
    pub jwt_hs256: Option<String>,
}

/// A secret that still verifies (never signs) until `until_millis`.
#[derive(Debug, Clone)]
pub struct AcceptedSecret {
    /// The secret.
    pub secret: Secret,
    /// Until when it verifies (Unix milliseconds).
    pub until_millis: i64,
}

#[derive(Debug, Clone)]
/// The whole configuration of a process, read once at start-up.
pub struct Config {
    /// `TABLE_NAME`.
    pub table_name: Option<String>,
    /// `MAIL_FROM`.
    pub mail_from: Option<String>,
    /// `SES_CONFIGURATION_SET`.
    pub ses_configuration_set: Option<String>,
    /// `APP_NAME`, shown in the mail.
    pub app_name: String,
    /// Client token checks.
    pub jwt: JwtConfig,
    /// SHA-256 digests of the accepted server keys (`SERVER_KEY_SHA256`).
    pub server_key_digests: Vec<[u8; 32]>,
    /// `VERIFICATION_SECRET`, the HMAC key of stored codes: new codes are signed with it.
    pub verification_secret: Secret,
    /// Other versions of it that still verify codes and links, each until a time (a rotated-out
    /// `AWSPREVIOUS` for one code or link lifetime, or an `AWSPENDING` about to become current).
    pub accepted_verification_secrets: Vec<AcceptedSecret>,
    /// Secrets Manager ARNs a Lambda function reads its secrets from during Init, instead of a
    /// plaintext variable (`VERIFICATION_SECRET_ARN`, `JWT_HS256_SECRET_ARN`).
    pub secret_arns: SecretArns,
    /// `ALLOWED_CALLBACK_URLS`.
    pub allowed_callback_urls: Vec<OriginPattern>,
    /// Lifetimes and limits.
    pub limits: Limits,
    /// `STORE` (local only).
    pub store: StoreKind,
    /// `MAILER` (local only).
    pub mailer: MailerKind,
    /// Where the embedded store and the outbox keep their files.
    pub data_dir: PathBuf,
    /// Local server only.
    pub port: u16,
    /// `DYNAMODB_WARM_UP`: whether a Lambda function opens its DynamoDB connection during Init.
    /// Off only to measure what the warm-up saves (`make bench`).
    pub dynamodb_warm_up: bool,
}

/// Every problem found in the environment, listed in one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.0.join("; "))
    }
}

impl std::error::Error for ConfigError {}

/// The server key `make run` accepts by default.
pub const LOCAL_DEV_SERVER_KEY: &str = "local-dev-server-key";
/// The HS256 secret `make run` signs dev tokens with by default.
pub const LOCAL_DEV_JWT_SECRET: &str = "local-dev-secret";
const LOCAL_DEV_VERIFICATION_SECRET: &str = "local-dev-verification-secret-not-for-production";
const LOCAL_DEV_CALLBACKS: &str = "http://localhost:*,http://127.0.0.1:*";

/// Hex SHA-256 of `input`: how server keys are configured.
pub fn sha256_hex(input: &[u8]) -> String {
    hex::encode(Sha256::digest(input))
}

/// `LOG_FORMAT` (`json` or `text`), read before the rest so that a configuration error is
/// logged in the format the process will keep; JSON on Lambda and text locally by default.
pub fn log_format_from_env(profile: Profile) -> LogFormat {
    match std::env::var("LOG_FORMAT").as_deref().map(str::trim) {
        Ok("json") => LogFormat::Json,
        Ok("text") => LogFormat::Text,
        _ if profile == Profile::Local => LogFormat::Text,
        _ => LogFormat::Json,
    }
}

impl Config {
    /// Puts in the secrets a Lambda function read from Secrets Manager (`secret_arns`): the
    /// current verification secret, the versions that still verify, and the HS256 secret.
    pub fn use_fetched_secrets(
        &mut self,
        verification: Option<(Secret, Vec<AcceptedSecret>)>,
        jwt_hs256: Option<Secret>,
    ) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if let Some((current, accepted)) = verification {
            let short = |s: &Secret| s.expose().len() < 32;
            if short(&current) || accepted.iter().any(|a| short(&a.secret)) {
                problems.push("the verification secret must be at least 32 bytes".to_owned());
            }
            self.verification_secret = current;
            self.accepted_verification_secrets = accepted;
        } else if self.secret_arns.verification.is_some() {
            problems.push("the verification secret was not read".to_owned());
        }
        if let Some(secret) = jwt_hs256 {
            self.jwt.hs256_secret = Some(secret);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems))
        }
    }

    /// The longest a code or link lives: how long a rotated-out secret must still verify.
    pub fn verification_lifetime_millis(&self) -> i64 {
        let seconds = self
            .limits
            .link_ttl_seconds
            .max(self.limits.code_ttl_seconds);
        i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// True when the server key is the local development key (as `make run` defaults it).
    pub fn uses_local_dev_server_key(&self) -> bool {
        let dev = sha256_hex(LOCAL_DEV_SERVER_KEY.as_bytes());
        self.server_key_digests.len() == 1 && hex::encode(self.server_key_digests[0]) == dev
    }

    /// Reads the process environment. The only place the service reads it.
    pub fn from_env(profile: Profile) -> Result<Config, ConfigError> {
        Config::from_lookup(profile, |name| std::env::var(name).ok())
    }

    /// Builds a config from any variable source (the environment, or a map in tests).
    pub fn from_lookup(
        profile: Profile,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut r = Reader {
            lookup,
            local: profile == Profile::Local,
            problems: Vec::new(),
        };
        let limits = r.limits();
        let port = r.port();
        let (verification_secret, secret_arns) = r.secrets();
        let server_key_digests = r.server_key_digests();
        let allowed_callback_urls = r.callbacks();
        let jwt = r.jwt();
        let (store, mailer, data_dir) = r.adapters();
        let table_name = r.get("TABLE_NAME");
        if store == StoreKind::DynamoDb && table_name.is_none() {
            r.problem("TABLE_NAME is required");
        }
        let mail_from = r.get("MAIL_FROM");
        let dynamodb_warm_up = r.flag("DYNAMODB_WARM_UP", true);
        let sends_mail = r.local || profile == (Profile::Lambda { sends_mail: true });
        if mailer == MailerKind::Ses && sends_mail && mail_from.is_none() {
            r.problem("MAIL_FROM is required");
        }
        if !r.problems.is_empty() {
            return Err(ConfigError(r.problems));
        }
        Ok(Config {
            table_name,
            mail_from,
            ses_configuration_set: r.get("SES_CONFIGURATION_SET"),
            app_name: r.get("APP_NAME").unwrap_or_else(|| "your app".to_owned()),
            jwt,
            server_key_digests,
            verification_secret,
            accepted_verification_secrets: Vec::new(),
            secret_arns,
            allowed_callback_urls,
            limits,
            store,
            mailer,
            data_dir,
            port,
            dynamodb_warm_up,
        })
    }
}

/// Reads variables one group at a time, collecting every problem instead of stopping at the
/// first.
struct Reader<F> {
    lookup: F,
    local: bool,
    problems: Vec<String>,
}

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    /// Empty counts as unset, as SAM passes "" for an empty parameter.
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// The variable, or locally its development default.
    fn get_or_local(&self, name: &str, default: &str) -> Option<String> {
        self.get(name)
            .or_else(|| self.local.then(|| default.to_owned()))
    }

    fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    fn number(&mut self, name: &str, default: u64, min: u64) -> u64 {
        match self.get(name).map(|raw| raw.trim().parse::<u64>()) {
            None => default,
            Some(Ok(n)) if n >= min => n,
            Some(_) => {
                self.problem(format!("{name} must be a whole number >= {min}"));
                default
            }
        }
    }

    fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.get(name).as_deref().map(str::trim) {
            None => default,
            Some("true") => true,
            Some("false") => false,
            Some(_) => {
                self.problem(format!("{name} must be true or false"));
                default
            }
        }
    }

    fn small_number(&mut self, name: &str, default: u32, min: u64) -> u32 {
        clamp_u32(self.number(name, u64::from(default), min))
    }

    fn limits(&mut self) -> Limits {
        let d = Limits::default();
        Limits {
            code_ttl_seconds: self.number("CODE_TTL_SECONDS", d.code_ttl_seconds, 1),
            link_ttl_seconds: self.number("LINK_TTL_SECONDS", d.link_ttl_seconds, 1),
            max_code_attempts: self.small_number("MAX_CODE_ATTEMPTS", d.max_code_attempts, 1),
            send_cooldown_seconds: self.number("SEND_COOLDOWN_SECONDS", d.send_cooldown_seconds, 0),
            max_sends_per_day: self.small_number("MAX_SENDS_PER_DAY", d.max_sends_per_day, 1),
            max_channels_per_user: self.small_number(
                "MAX_CHANNELS_PER_USER",
                d.max_channels_per_user,
                1,
            ),
        }
    }

    fn port(&mut self) -> u16 {
        match self.get("PORT").map(|raw| raw.trim().parse::<u16>()) {
            None => 3000,
            Some(Ok(port)) => port,
            Some(Err(_)) => {
                self.problem("PORT must be a port number");
                3000
            }
        }
    }

    /// The verification secret, or on Lambda the ARNs to read it (and the HS256 secret) from:
    /// one source per secret, so a deployment never has both a plaintext value and an ARN.
    fn secrets(&mut self) -> (Secret, SecretArns) {
        let arns = SecretArns {
            verification: self.get("VERIFICATION_SECRET_ARN"),
            jwt_hs256: self.get("JWT_HS256_SECRET_ARN"),
        };
        for (arn, plain, name) in [
            (
                &arns.verification,
                "VERIFICATION_SECRET",
                "VERIFICATION_SECRET_ARN",
            ),
            (&arns.jwt_hs256, "JWT_HS256_SECRET", "JWT_HS256_SECRET_ARN"),
        ] {
            if arn.is_none() {
                continue;
            }
            if self.local {
                self.problem(format!(
                    "{name} is for Lambda only: set {plain} for the local server"
                ));
            } else if self.get(plain).is_some() {
                self.problem(format!("set {name} or {plain}, not both"));
            }
        }
        if arns.verification.is_some() && !self.local {
            // Read from Secrets Manager during Init, then checked by `use_fetched_secrets`.
            return (Secret::new(Vec::new()), arns);
        }
        (self.verification_secret(), arns)
    }

    fn verification_secret(&mut self) -> Secret {
        match self.get_or_local("VERIFICATION_SECRET", LOCAL_DEV_VERIFICATION_SECRET) {
            Some(s) if s.len() >= 32 => return Secret::new(s.into_bytes()),
            Some(_) => self.problem("VERIFICATION_SECRET must be at least 32 bytes"),
            None if self.local => self.problem("VERIFICATION_SECRET is required"),
            None => self.problem("VERIFICATION_SECRET_ARN (or VERIFICATION_SECRET) is required"),
        }
        Secret::new(Vec::new())
    }

    /// The non-empty items of a comma-separated variable.
    fn list(&self, name: &str, default: &str) -> Vec<String> {
        let raw = self.get_or_local(name, default).unwrap_or_default();
        let items = raw.split(',').map(str::trim).filter(|s| !s.is_empty());
        items.map(str::to_owned).collect()
    }

    fn server_key_digests(&mut self) -> Vec<[u8; 32]> {
        let local_digest = sha256_hex(LOCAL_DEV_SERVER_KEY.as_bytes());
        let mut digests = Vec::new();
        for item in self.list("SERVER_KEY_SHA256", &local_digest) {
            match hex::decode(item)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            {
                Some(digest) => digests.push(digest),
                None => self.problem(
                    "SERVER_KEY_SHA256 must be comma-separated 64-digit hex SHA-256 digests",
                ),
            }
        }
        digests
    }

    fn callbacks(&mut self) -> Vec<OriginPattern> {
        let mut patterns = Vec::new();
        for item in self.list("ALLOWED_CALLBACK_URLS", LOCAL_DEV_CALLBACKS) {
            match OriginPattern::parse(&item) {
                Ok(p) => patterns.push(p),
                Err(e) => self.problem(format!("ALLOWED_CALLBACK_URLS entry {item:?}: {e}")),
            }
        }
        patterns
    }

    fn jwt(&mut self) -> JwtConfig {
        let jwks_url = self.get("JWT_JWKS_URL");
        let http =
            |u: &String| url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
        if jwks_url.as_ref().is_some_and(|u| !http(u)) {
            self.problem("JWT_JWKS_URL must be an http(s) URL");
        }
        JwtConfig {
            jwks_url,
            issuer: self.get("JWT_ISSUER"),
            audience: self.get("JWT_AUDIENCE"),
            hs256_secret: self
                .get_or_local("JWT_HS256_SECRET", LOCAL_DEV_JWT_SECRET)
                .map(|s| Secret::new(s.into_bytes())),
        }
    }

    /// Store, mailer and data directory. On Lambda the real adapters are the only ones: the
    /// local ones are not even linked into a function, so asking for them is a configuration
    /// error, not a silent fallback.
    fn adapters(&mut self) -> (StoreKind, MailerKind, PathBuf) {
        if !self.local {
            for name in ["STORE", "MAILER", "DATA_DIR"] {
                if self.get(name).is_some() {
                    self.problem(format!("{name} is for the local server only"));
                }
            }
            let dir = PathBuf::from("/tmp/contact-channels");
            return (StoreKind::DynamoDb, MailerKind::Ses, dir);
        }
        let store = match self.get("STORE").as_deref() {
            None | Some("embedded") => StoreKind::Embedded,
            Some("dynamodb") => StoreKind::DynamoDb,
            Some(other) => {
                self.problem(format!(
                    "STORE must be 'embedded' or 'dynamodb', not {other:?}"
                ));
                StoreKind::Embedded
            }
        };
        let mailer = match self.get("MAILER").as_deref() {
            None | Some("outbox") => MailerKind::Outbox,
            Some("ses") => MailerKind::Ses,
            Some(other) => {
                self.problem(format!("MAILER must be 'outbox' or 'ses', not {other:?}"));
                MailerKind::Outbox
            }
        };
        let dir = PathBuf::from(self.get("DATA_DIR").unwrap_or_else(|| ".local".to_owned()));
        (store, mailer, dir)
    }
}

fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The configuration of the stream consumer (`cc-events`): where events go, and when a code
/// counts as burned (the same `MAX_CODE_ATTEMPTS` as the API functions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    /// `EVENT_BUS_NAME`: the bus PutEvents writes to.
    pub event_bus_name: String,
    /// `MAX_CODE_ATTEMPTS`.
    pub max_code_attempts: u32,
}

impl EventsConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<EventsConfig, ConfigError> {
        EventsConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup`, listing every problem.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<EventsConfig, ConfigError> {
        let mut r = Reader {
            lookup,
            local: false,
            problems: Vec::new(),
        };
        let max_code_attempts =
            r.small_number("MAX_CODE_ATTEMPTS", Limits::default().max_code_attempts, 1);
        let event_bus_name = r.get("EVENT_BUS_NAME");
        if event_bus_name.is_none() {
            r.problem("EVENT_BUS_NAME is required");
        }
        match event_bus_name {
            Some(event_bus_name) if r.problems.is_empty() => Ok(EventsConfig {
                event_bus_name,
                max_code_attempts,
            }),
            _ => Err(ConfigError(r.problems)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn local_profile_fills_in_development_defaults() {
        let c = Config::from_lookup(Profile::Local, lookup(&[])).unwrap();
        assert_eq!(c.port, 3000);
        assert_eq!(c.server_key_digests.len(), 1);
        assert_eq!(c.allowed_callback_urls.len(), 2);
        assert!(c.jwt.hs256_secret.is_some());
        assert_eq!(c.limits.max_code_attempts, 5);
        assert_eq!(c.app_name, "your app");
        assert!(c.dynamodb_warm_up);
    }

    #[test]
    fn lambda_profile_lists_every_missing_or_malformed_variable_at_once() {
        let err = Config::from_lookup(
            Profile::Lambda { sends_mail: true },
            lookup(&[("CODE_TTL_SECONDS", "0"), ("SERVER_KEY_SHA256", "abc")]),
        )
        .unwrap_err();
        let text = err.to_string();
        for name in [
            "VERIFICATION_SECRET",
            "MAIL_FROM",
            "CODE_TTL_SECONDS",
            "SERVER_KEY_SHA256",
        ] {
            assert!(text.contains(name), "{text} should name {name}");
        }
    }

    #[test]
    fn lambda_defaults_to_dynamodb_and_ses_and_local_to_embedded_and_outbox() {
        let vars = [
            ("VERIFICATION_SECRET", "x".repeat(32)),
            ("TABLE_NAME", "t".into()),
            ("MAIL_FROM", "a@b.co".into()),
        ];
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let c = Config::from_lookup(Profile::Lambda { sends_mail: true }, lookup(&vars)).unwrap();
        assert_eq!((c.store, c.mailer), (StoreKind::DynamoDb, MailerKind::Ses));
        let c = Config::from_lookup(Profile::Local, lookup(&[])).unwrap();
        assert_eq!(
            (c.store, c.mailer),
            (StoreKind::Embedded, MailerKind::Outbox)
        );
        // Only the sending function needs MAIL_FROM.
        let without_from: Vec<(&str, &str)> = vars
            .into_iter()
            .filter(|(k, _)| *k != "MAIL_FROM")
            .collect();
        assert!(
            Config::from_lookup(Profile::Lambda { sends_mail: false }, lookup(&without_from))
                .is_ok()
        );
    }

    #[test]
    fn lambda_profile_refuses_local_only_variables() {
        let text = Config::from_lookup(
            Profile::Lambda { sends_mail: false },
            lookup(&[
                ("VERIFICATION_SECRET", &"x".repeat(32)),
                ("TABLE_NAME", "t"),
                ("STORE", "embedded"),
                ("MAILER", "outbox"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            text.contains("STORE is for the local server only"),
            "{text}"
        );
        assert!(
            text.contains("MAILER is for the local server only"),
            "{text}"
        );
    }

    #[test]
    fn every_variable_overrides_its_local_default() {
        let c = Config::from_lookup(
            Profile::Local,
            lookup(&[
                ("PORT", "0"),
                ("MAX_CHANNELS_PER_USER", "3"),
                ("SEND_COOLDOWN_SECONDS", "0"),
                ("ALLOWED_CALLBACK_URLS", "https://app.example.com"),
                ("APP_NAME", "Acme"),
                ("DYNAMODB_WARM_UP", "false"),
            ]),
        )
        .unwrap();
        assert!(!c.dynamodb_warm_up);
        assert_eq!(c.port, 0);
        assert_eq!(c.limits.max_channels_per_user, 3);
        assert_eq!(c.limits.send_cooldown_seconds, 0);
        assert_eq!(c.allowed_callback_urls.len(), 1);
        assert_eq!(c.app_name, "Acme");
    }

    #[test]
    fn lambda_reads_secrets_by_arn_and_refuses_both_an_arn_and_a_plain_value() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:v";
        let base = [("TABLE_NAME", "t"), ("VERIFICATION_SECRET_ARN", arn)];
        let lambda = Profile::Lambda { sends_mail: false };
        let mut c = Config::from_lookup(lambda, lookup(&base)).unwrap();
        assert_eq!(c.secret_arns.verification.as_deref(), Some(arn));
        // Not usable until the fetched secret is in.
        assert!(c.use_fetched_secrets(None, None).is_err());
        let short = Some((Secret::new(b"short".to_vec()), Vec::new()));
        assert!(c.use_fetched_secrets(short, None).is_err());
        let good = Some((Secret::new(vec![7; 32]), Vec::new()));
        c.use_fetched_secrets(good, Some(Secret::new(b"h".to_vec())))
            .unwrap();
        assert_eq!(c.verification_secret.expose(), &[7; 32]);
        assert!(c.jwt.hs256_secret.is_some());

        let both = [
            ("TABLE_NAME", "t"),
            ("VERIFICATION_SECRET_ARN", arn),
            ("VERIFICATION_SECRET", &"x".repeat(32)),
        ];
        let text = Config::from_lookup(lambda, lookup(&both))
            .unwrap_err()
            .to_string();
        assert!(text.contains("not both"), "{text}");
        let text = Config::from_lookup(Profile::Local, lookup(&[("JWT_HS256_SECRET_ARN", arn)]))
            .unwrap_err()
            .to_string();
        assert!(text.contains("for Lambda only"), "{text}");
    }

    #[test]
    fn the_events_function_needs_its_bus_and_lists_every_problem() {
        let err = EventsConfig::from_lookup(lookup(&[("MAX_CODE_ATTEMPTS", "0")])).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        let c = EventsConfig::from_lookup(lookup(&[("EVENT_BUS_NAME", "bus")])).unwrap();
        assert_eq!((c.event_bus_name.as_str(), c.max_code_attempts), ("bus", 5));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new(b"hunter2".to_vec());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
