//! The SES v2 mailer (its own crate, so that only the function that sends mail links the SES
//! client): `SendEmail` with simple content (subject, text, HTML) from `MAIL_FROM`,
//! optionally through `SES_CONFIGURATION_SET`. Any refusal (unverified identity, sending paused,
//! throttling after the SDK's retries, timeout) is a `MailError`, answered 502.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use contact_channels::mail::{Mail, MailError, Mailer};

/// Sends verification mail with SES v2 `SendEmail`.
#[derive(Clone)]
pub struct SesMailer {
    client: Client,
    from: String,
    configuration_set: Option<String>,
}

impl SesMailer {
    /// A mailer with a client built from the process's shared SDK configuration.
    pub fn from_sdk_config(
        sdk: &aws_config::SdkConfig,
        from: impl Into<String>,
        configuration_set: Option<String>,
    ) -> Self {
        SesMailer::new(Client::new(sdk), from, configuration_set)
    }

    /// A mailer sending from `from` (an SES-verified identity) with `client`.
    pub fn new(client: Client, from: impl Into<String>, configuration_set: Option<String>) -> Self {
        SesMailer {
            client,
            from: from.into(),
            configuration_set,
        }
    }
}

fn content(text: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError(e.to_string()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let body = Body::builder()
            .text(content(&mail.text)?)
            .html(content(&mail.html)?)
            .build();
        let message = Message::builder()
            .subject(content(&mail.subject)?)
            .body(body)
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(
                Destination::builder()
                    .to_addresses(mail.to.as_str())
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                // The error code names the refusal (MessageRejected, SendingPausedException,
                // TooManyRequestsException after the SDK's retries, a timeout, …).
                use aws_sdk_sesv2::error::ProvideErrorMetadata;
                let code = e.code().unwrap_or("no service code");
                let message = e.message().unwrap_or_default();
                let kind = match &e {
                    aws_sdk_sesv2::error::SdkError::TimeoutError(_) => "timeout",
                    aws_sdk_sesv2::error::SdkError::DispatchFailure(_) => "connection failure",
                    _ => "refused",
                };
                MailError(format!("SES SendEmail {kind}: {code} {message}"))
            })
    }
}
