//! One-time secrets: 6-digit codes and 256-bit link tokens from the OS CSPRNG, and their keyed
//! hashes. Only the hashes are ever stored; the plain values exist only in the mail.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::ChannelId;
use crate::domain::channel::Digest;

/// A secret value that cannot be printed by accident.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps the bytes of a secret.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

redacted_debug!(Secret, VerificationCode);

/// A 6-digit code as a user types it; the only way to get one is to parse six ASCII digits.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationCode(String);

impl VerificationCode {
    /// Exactly six ASCII digits, or nothing.
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 6 && raw.bytes().all(|b| b.is_ascii_digit()))
            .then(|| VerificationCode(raw.to_owned()))
    }

    /// A uniformly random code from the OS CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        // Rejection sampling keeps every code equally likely (no modulo bias).
        const LIMIT: u32 = u32::MAX - (u32::MAX % 1_000_000);
        loop {
            let mut buf = [0u8; 4];
            getrandom::fill(&mut buf)?;
            let n = u32::from_le_bytes(buf);
            if n < LIMIT {
                return Ok(VerificationCode(format!("{:06}", n % 1_000_000)));
            }
        }
    }

    /// The digits, for the mail and the hash only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A link token: 32 random bytes, base64url without padding (43 characters).
pub fn generate_link_token() -> Result<String, getrandom::Error> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// Hashes codes and tokens with `VERIFICATION_SECRET`, so a leaked table reveals nothing usable.
/// New digests use the current secret; during a rotation, digests made with another version
/// (the previous one, for one code or link lifetime) still verify.
#[derive(Clone, Debug)]
pub struct Hasher {
    secret: Secret,
    /// Other versions that still verify, each until a time (Unix milliseconds).
    accepted: Vec<(Secret, i64)>,
}

impl Hasher {
    /// A hasher keyed with `VERIFICATION_SECRET`.
    pub fn new(secret: Secret) -> Self {
        Hasher {
            secret,
            accepted: Vec::new(),
        }
    }

    /// Also verifies digests made with `secret`, until `until_millis`.
    pub fn accepting(mut self, secret: Secret, until_millis: i64) -> Self {
        self.accepted.push((secret, until_millis));
        self
    }

    /// The secrets that verify at `now`: the current one first.
    fn verifying(&self, now: i64) -> impl Iterator<Item = &Secret> {
        let others = self.accepted.iter().filter(move |(_, until)| now < *until);
        std::iter::once(&self.secret).chain(others.map(|(s, _)| s))
    }

    fn mac(secret: &Secret, parts: &[&[u8]]) -> Digest {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose()) {
            Ok(mac) => mac,
            Err(_) => unreachable_hmac(),
        };
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        Digest::from_bytes(mac.finalize().into_bytes().into())
    }

    fn code_with(secret: &Secret, channel: ChannelId, code: &VerificationCode) -> Digest {
        Hasher::mac(
            secret,
            &[b"code", channel.to_string().as_bytes(), code.0.as_bytes()],
        )
    }

    /// A code is bound to its channel: only a million codes exist, and binding them keeps the
    /// digest of one channel's code from meaning anything for another.
    pub fn code(&self, channel: ChannelId, code: &VerificationCode) -> Digest {
        Hasher::code_with(&self.secret, channel, code)
    }

    /// Whether `code` is the one whose digest is `stored`, under any secret that verifies at
    /// `now` (each comparison constant-time).
    pub fn code_matches(
        &self,
        channel: ChannelId,
        code: &VerificationCode,
        stored: &Digest,
        now: i64,
    ) -> bool {
        self.verifying(now)
            .any(|secret| stored.matches(&Hasher::code_with(secret, channel, code)))
    }

    /// A link token is looked up by its digest, so the digest depends on the token alone.
    pub fn link(&self, token: &str) -> Digest {
        Hasher::mac(&self.secret, &[b"link", token.as_bytes()])
    }

    /// The digests a link token may be stored under at `now`, the current secret's first.
    pub fn links(&self, token: &str, now: i64) -> Vec<Digest> {
        self.verifying(now)
            .map(|secret| Hasher::mac(secret, &[b"link", token.as_bytes()]))
            .collect()
    }
}

#[cold]
fn unreachable_hmac() -> ! {
    unreachable!("HMAC-SHA-256 takes keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..50)
            .map(|_| VerificationCode::generate().unwrap().0)
            .collect();
        assert!(codes.len() > 40);
        assert!(codes.iter().all(|c| VerificationCode::parse(c).is_some()));
    }

    #[test]
    fn code_parse_takes_exactly_six_ascii_digits() {
        assert!(VerificationCode::parse("012345").is_some());
        for bad in ["12345", "1234567", "12345a", "١٢٣٤٥٦", " 12345", ""] {
            assert!(VerificationCode::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn link_tokens_carry_256_bits_url_safe() {
        let t = generate_link_token().unwrap();
        assert_eq!(t.len(), 43);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(t, generate_link_token().unwrap());
    }

    #[test]
    fn digests_depend_on_the_secret_and_the_channel() {
        let a = Hasher::new(Secret::new(vec![1; 32]));
        let b = Hasher::new(Secret::new(vec![2; 32]));
        let code = VerificationCode::parse("123456").unwrap();
        let ch = ChannelId::new_random();
        assert!(a.code(ch, &code).matches(&a.code(ch, &code)));
        assert!(!a.code(ch, &code).matches(&b.code(ch, &code)));
        assert!(
            !a.code(ch, &code)
                .matches(&a.code(ChannelId::new_random(), &code))
        );
        assert!(!a.link("123456").matches(&a.code(ch, &code)));
    }

    #[test]
    fn a_rotated_out_secret_verifies_until_its_time_but_never_signs() {
        let old = Hasher::new(Secret::new(vec![1; 32]));
        let new = Hasher::new(Secret::new(vec![2; 32])).accepting(Secret::new(vec![1; 32]), 100);
        let code = VerificationCode::parse("123456").unwrap();
        let ch = ChannelId::new_random();
        let stored = old.code(ch, &code);
        assert!(new.code_matches(ch, &code, &stored, 99));
        assert!(
            !new.code_matches(ch, &code, &stored, 100),
            "only for its lifetime"
        );
        assert!(
            !new.code(ch, &code).matches(&stored),
            "new codes use the new secret"
        );
        let wrong = VerificationCode::parse("654321").unwrap();
        assert!(!new.code_matches(ch, &wrong, &stored, 0));
        let links = new.links("t", 0);
        assert_eq!(links.len(), 2);
        assert!(links[0].matches(&new.link("t")));
        assert!(links[1].matches(&old.link("t")));
        assert_eq!(new.links("t", 100).len(), 1);
    }
}
