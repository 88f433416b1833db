//! The verification mail (a pure composer) and the mail port. A `Mailer` either accepts a mail
//! or fails; any failure is answered `502 EMAIL_DELIVERY_FAILED` and leaves no usable code.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::EmailAddress;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
/// A verification mail, ready to send.
pub struct Mail {
    /// The recipient.
    pub to: EmailAddress,
    /// Subject line.
    pub subject: String,
    /// Plain-text part (holds the code or link).
    pub text: String,
    /// HTML part.
    pub html: String,
}

// The body holds a live code or link: keep it out of any `{:?}` in a log line.
impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The mail service did not accept the mail. The text is for the log, never the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mail not accepted: {0}")]
pub struct MailError(pub String);

#[async_trait]
/// The mail port: SES in AWS, the outbox locally.
pub trait Mailer: Send + Sync {
    /// Returns once the mail service has accepted the mail.
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// What the mail carries.
pub enum MailKind<'a> {
    /// A link that verifies the address when opened.
    Link {
        /// The callback page with the token.
        url: &'a str,
    },
    /// A 6-digit code, and optionally the page where it is typed in.
    Code {
        /// The six digits.
        code: &'a str,
        /// Where to type them, if the app named a page.
        page: Option<&'a str>,
    },
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn lifetime(seconds: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if seconds.is_multiple_of(3600) {
        plural(seconds / 3600, "hour")
    } else if seconds.is_multiple_of(60) {
        plural(seconds / 60, "minute")
    } else {
        plural(seconds, "second")
    }
}

/// Builds the verification mail: subject, plain text and HTML, naming the app, the link or
/// code, how long it is valid, and what to do if the reader did not ask for it.
pub fn compose(app_name: &str, to: &EmailAddress, kind: &MailKind<'_>, ttl_seconds: u64) -> Mail {
    let valid = lifetime(ttl_seconds);
    let ignore = format!(
        "If you did not ask to verify this address for {app_name}, ignore this email: nothing changes unless the {} is used.",
        match kind {
            MailKind::Link { .. } => "link",
            MailKind::Code { .. } => "code",
        }
    );
    let app = escape_html(app_name);
    let ignore_html = escape_html(&ignore);
    match kind {
        MailKind::Link { url } => {
            let href = escape_html(url);
            Mail {
                to: to.clone(),
                subject: format!("Verify your email address for {app_name}"),
                text: format!(
                    "Verify your email address for {app_name} by opening this link:\n\n{url}\n\nThe link is valid for {valid}.\n\n{ignore}\n"
                ),
                html: format!(
                    "<!doctype html><html><body><p>Verify your email address for {app} by opening this link:</p><p><a href=\"{href}\">Verify my email address</a></p><p>Or copy this address into your browser: {href}</p><p>The link is valid for {valid}.</p><p>{ignore_html}</p></body></html>"
                ),
            }
        }
        MailKind::Code { code, page } => {
            let page_text = page
                .map(|p| format!("Enter it here: {p}\n\n"))
                .unwrap_or_default();
            let page_html = page
                .map(|p| {
                    let p = escape_html(p);
                    format!("<p>Enter it here: <a href=\"{p}\">{p}</a></p>")
                })
                .unwrap_or_default();
            Mail {
                to: to.clone(),
                subject: format!("Your verification code for {app_name}"),
                text: format!(
                    "Your verification code for {app_name} is:\n\n{code}\n\n{page_text}The code is valid for {valid}.\n\n{ignore}\n"
                ),
                html: format!(
                    "<!doctype html><html><body><p>Your verification code for {app} is:</p><p style=\"font-size:24px;letter-spacing:4px\"><strong>{code}</strong></p>{page_html}<p>The code is valid for {valid}.</p><p>{ignore_html}</p></body></html>"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to() -> EmailAddress {
        EmailAddress::parse("a@example.com").unwrap()
    }

    #[test]
    fn link_mail_names_the_app_the_link_and_the_lifetime() {
        let url = "https://app.example.com/v?x=1&code=TOKEN";
        let m = compose("Acme", &to(), &MailKind::Link { url }, 86_400);
        assert!(m.subject.contains("Acme"));
        assert!(m.text.contains(url));
        assert!(m.text.contains("24 hours"));
        assert!(m.text.contains("did not ask"));
        assert!(
            m.html
                .contains("href=\"https://app.example.com/v?x=1&amp;code=TOKEN\"")
        );
    }

    #[test]
    fn code_mail_shows_six_digits_and_the_optional_page() {
        let m = compose(
            "Acme",
            &to(),
            &MailKind::Code {
                code: "012345",
                page: None,
            },
            600,
        );
        assert!(m.text.contains("012345"));
        assert!(m.text.contains("10 minutes"));
        assert!(m.html.contains("012345"));
        let page = "https://app.example.com/enter-code";
        let m = compose(
            "Acme",
            &to(),
            &MailKind::Code {
                code: "012345",
                page: Some(page),
            },
            90,
        );
        assert!(m.text.contains(page));
        assert!(m.text.contains("90 seconds"));
    }

    #[test]
    fn app_name_is_escaped_in_html() {
        let m = compose(
            "<script>alert('x')</script> & Co",
            &to(),
            &MailKind::Code {
                code: "111111",
                page: None,
            },
            60,
        );
        assert!(!m.html.contains("<script>"));
        assert!(
            m.html
                .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co")
        );
        assert!(
            m.text.contains("<script>"),
            "plain text is not HTML and stays as written"
        );
    }

    #[test]
    fn debug_output_hides_the_body() {
        let m = compose(
            "Acme",
            &to(),
            &MailKind::Code {
                code: "987654",
                page: None,
            },
            60,
        );
        assert!(!format!("{m:?}").contains("987654"));
    }
}

/// A mailer that keeps what it accepts and refuses while told to: the test double of the
/// service's and the fault suites' tests (feature `memory-store`, like the in-memory store).
#[cfg(any(test, feature = "memory-store"))]
#[derive(Debug, Default)]
pub struct RecordingMailer {
    sent: std::sync::Mutex<Vec<Mail>>,
    refusing: std::sync::atomic::AtomicBool,
}

#[cfg(any(test, feature = "memory-store"))]
#[allow(clippy::unwrap_used)] // A poisoned lock is a test that already panicked.
impl RecordingMailer {
    /// Refuse every mail from now on (`true`) or accept them again (`false`).
    pub fn set_refusing(&self, refusing: bool) {
        self.refusing
            .store(refusing, std::sync::atomic::Ordering::SeqCst);
    }

    /// The mails accepted so far, oldest first.
    pub fn sent(&self) -> Vec<Mail> {
        self.sent.lock().unwrap().clone()
    }

    /// The text of the last mail accepted (panics if none was: a test expected one).
    pub fn last_text(&self) -> String {
        self.sent.lock().unwrap().last().unwrap().text.clone()
    }
}

#[cfg(any(test, feature = "memory-store"))]
#[async_trait]
impl Mailer for RecordingMailer {
    #[allow(clippy::unwrap_used)]
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        if self.refusing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(MailError("refused by the test".into()));
        }
        self.sent.lock().unwrap().push(mail.clone());
        Ok(())
    }
}
