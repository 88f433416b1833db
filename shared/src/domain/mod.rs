//! Domain values that parse on construction: once you hold an `EmailAddress`, a `UserId` or a
//! `ChannelId`, it is valid and normalized (docs/api.md §1 and §3). Parse errors are typed.

use std::fmt;

/// `Debug` that names the type and never its content: for secrets, codes and their digests,
/// so that no `{:?}` anywhere can put one in a log.
macro_rules! redacted_debug {
    ($($type:ident),+) => {$(
        impl std::fmt::Debug for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($type), "([redacted])"))
            }
        }
    )+};
}

pub mod callback;
pub mod channel;
pub mod secret;

use serde::{Deserialize, Serialize};

/// Why a value was refused; `Display` gives the sentence the API returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("must be an email address (local@domain.tld)")]
    /// Not `local@domain`.
    EmailShape,
    #[error("the local part of the email address is invalid")]
    /// The local part breaks the dot-atom rules.
    EmailLocalPart,
    #[error("the domain of the email address is invalid")]
    /// The domain is not a valid (IDNA) host name of two labels or more.
    EmailDomain,
    #[error("the email address is longer than 254 octets")]
    /// Over 254 octets.
    EmailTooLong,
    #[error("must be 1-128 characters from A-Z a-z 0-9 . _ - : | @")]
    /// Characters outside the user-id alphabet, or a bad length.
    UserIdCharacters,
    #[error("'{0}' is reserved")]
    /// `me` or `verify`.
    UserIdReserved(&'static str),
    #[error("must be a UUID")]
    /// Not a canonical UUID.
    ChannelId,
}

/// A normalized, valid email address: trimmed, lower-cased, IDNA domain in ASCII form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

const LOCAL_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";

impl EmailAddress {
    /// Trims, lower-cases and IDNA-normalizes `raw`, or says what is wrong with it.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let trimmed = raw.trim();
        let (local, domain) = trimmed.rsplit_once('@').ok_or(ParseError::EmailShape)?;
        if local.is_empty() || domain.is_empty() {
            return Err(ParseError::EmailShape);
        }
        if local.len() > 64
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || !local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || LOCAL_SPECIALS.contains(c))
        {
            return Err(ParseError::EmailLocalPart);
        }
        // UTS #46 non-transitional processing (the idna crate's default) maps `ü.example`
        // and `xn--tda.example` to one ASCII form, lower-cased, so they compare equal.
        let domain = idna::domain_to_ascii(domain).map_err(|_| ParseError::EmailDomain)?;
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 || !labels.iter().all(|l| valid_label(l)) {
            return Err(ParseError::EmailDomain);
        }
        let address = format!("{}@{}", local.to_ascii_lowercase(), domain);
        if address.len() > 254 {
            return Err(ParseError::EmailTooLong);
        }
        Ok(EmailAddress(address))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The (ASCII) domain.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        EmailAddress::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The app's id of a user (the JWT `sub`). Never `me` (an alias) nor `verify` (a route).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// 1–128 characters from `A-Z a-z 0-9 . _ - : | @`, not `me` nor `verify`.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.is_empty()
            || raw.len() > 128
            || !raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_:|@".contains(&b))
        {
            return Err(ParseError::UserIdCharacters);
        }
        match raw {
            "me" => Err(ParseError::UserIdReserved("me")),
            "verify" => Err(ParseError::UserIdReserved("verify")),
            _ => Ok(UserId(raw.to_owned())),
        }
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        UserId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A user as named in a request: an id, or `me` (the calling client's own id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// The calling client's own user.
    Me,
    /// A named user.
    Id(UserId),
}

impl UserRef {
    /// `me`, or a user id.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw == "me" {
            Ok(UserRef::Me)
        } else {
            UserId::parse(raw).map(UserRef::Id)
        }
    }
}

/// A channel id: a UUID in its canonical hyphenated lower-case form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChannelId(uuid::Uuid);

impl ChannelId {
    /// A new random (v4) id.
    pub fn new_random() -> Self {
        ChannelId(uuid::Uuid::new_v4())
    }

    /// Only the canonical 36-character form is accepted, so one channel has one spelling.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.len() != 36 {
            return Err(ParseError::ChannelId);
        }
        uuid::Uuid::try_parse(raw)
            .map(ChannelId)
            .map_err(|_| ParseError::ChannelId)
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// How a verification proves ownership: a link with a token, or a 6-digit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// A link to the app's page carrying a 256-bit token.
    EmailLink,
    /// A 6-digit code the user types in.
    EmailCode,
}

impl Strategy {
    /// `email_link` or `email_code`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "email_link" => Some(Strategy::EmailLink),
            "email_code" => Some(Strategy::EmailCode),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::EmailLink => "email_link",
            Strategy::EmailCode => "email_code",
        }
    }
}

impl<'de> Deserialize<'de> for Strategy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Strategy::parse(&raw)
            .ok_or_else(|| serde::de::Error::custom("must be \"email_link\" or \"email_code\""))
    }
}

/// The kind of a channel. Only email exists for now; the wire field `type` is checked against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChannelType {
    /// An email address.
    Email,
}

impl<'de> Deserialize<'de> for ChannelType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "email" => Ok(ChannelType::Email),
            _ => Err(serde::de::Error::custom("must be \"email\"")),
        }
    }
}

impl<'de> Deserialize<'de> for UserRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        UserRef::parse(&raw).map_err(|_| serde::de::Error::custom(USER_REF_RULE))
    }
}

/// What a user id in a request must look like, as an ECMA-262 regular expression (for the
/// OpenAPI document): `UserRef::parse` accepts exactly what it matches.
pub const USER_REF_PATTERN: &str = "^(?!verify$)[A-Za-z0-9._:|@-]{1,128}$";

/// What a user id in a request must look like (the sentence of the schema error).
pub const USER_REF_RULE: &str = "must be 1-128 characters from A-Z a-z 0-9 . _ - : | @, or 'me'";

/// Milliseconds since the Unix epoch, the unit of every timestamp in the API.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_codes_and_digests_never_show_in_debug() {
        let code = secret::VerificationCode::parse("123456").unwrap();
        let shown = format!(
            "{:?} {:?} {:?}",
            secret::Secret::new("hunter2"),
            code,
            channel::Digest::from_bytes([0xab; 32])
        );
        assert_eq!(
            shown,
            "Secret([redacted]) VerificationCode([redacted]) Digest([redacted])"
        );
    }

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        let e = EmailAddress::parse("  John.Doe@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "john.doe@example.com");
    }

    #[test]
    fn unicode_and_punycode_domains_are_the_same_value() {
        let a = EmailAddress::parse("a@ü.example").unwrap();
        let b = EmailAddress::parse("a@xn--tda.example").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "a@xn--tda.example");
    }

    #[test]
    fn email_special_characters_in_local_part_are_accepted() {
        assert!(EmailAddress::parse("a!#$%&'*+/=?^_`{|}~-b@example.com").is_ok());
    }

    #[test]
    fn email_rejections() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            ".a@example.com",
            "a.@example.com",
            "a..b@example.com",
            "\"quoted\"@example.com",
            "ü@example.com",
            "a b@example.com",
            "a@-example.com",
            "a@example-.com",
            "a@exa_mple.com",
            "a@example..com",
            "a@example.com.",
        ] {
            assert!(
                EmailAddress::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn email_length_limits() {
        let local64 = "a".repeat(64);
        assert!(EmailAddress::parse(&format!("{local64}@example.com")).is_ok());
        let local65 = "a".repeat(65);
        assert_eq!(
            EmailAddress::parse(&format!("{local65}@example.com")),
            Err(ParseError::EmailLocalPart)
        );
        let label63 = "b".repeat(63);
        assert!(EmailAddress::parse(&format!("a@{label63}.com")).is_ok());
        let label64 = "b".repeat(64);
        assert!(EmailAddress::parse(&format!("a@{label64}.com")).is_err());
        // 64 + 1 + 63 + 1 + 63 + 1 + 61 = 254 octets is the most allowed.
        let long = format!(
            "{}@{}.{}.{}",
            "a".repeat(64),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        assert_eq!(long.len(), 254);
        assert!(EmailAddress::parse(&long).is_ok());
        let too_long = format!("{long}d");
        assert_eq!(
            EmailAddress::parse(&too_long),
            Err(ParseError::EmailTooLong)
        );
    }

    #[test]
    fn user_ids_follow_the_contract_alphabet() {
        assert!(UserId::parse("user_1.a-b:c|d@e").is_ok());
        assert!(UserId::parse(&"x".repeat(128)).is_ok());
        assert!(UserId::parse(&"x".repeat(129)).is_err());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a b").is_err());
        assert!(UserId::parse("a/b").is_err());
        assert!(UserId::parse("ü").is_err());
        assert_eq!(UserId::parse("me"), Err(ParseError::UserIdReserved("me")));
        assert!(UserId::parse("verify").is_err());
        assert_eq!(UserRef::parse("me"), Ok(UserRef::Me));
    }

    #[test]
    fn channel_ids_must_be_canonical_uuids() {
        let id = ChannelId::new_random();
        assert_eq!(ChannelId::parse(&id.to_string()), Ok(id));
        assert!(ChannelId::parse("not-a-uuid").is_err());
        assert!(ChannelId::parse(&id.to_string().replace('-', "")).is_err());
    }
}
