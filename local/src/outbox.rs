//! The local mailer: every mail is appended to `DATA_DIR/outbox.jsonl` (kept across restarts)
//! and printed to standard output, the console mailbox of `make run`. Recipients under the
//! reserved `.invalid` domain are refused, so the delivery-failure path can be tried locally.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use contact_channels::mail::{Mail, MailError, Mailer};

/// One delivered mail, as `/_dev/mailbox.json` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivered {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub sent_at_millis: i64,
}

#[derive(Clone)]
pub struct Outbox {
    path: PathBuf,
    echo: bool,
    lock: Arc<Mutex<()>>,
}

impl Outbox {
    /// `echo` prints each mail to standard output as it is sent.
    pub fn open(dir: &Path, echo: bool) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Outbox {
            path: dir.join("outbox.jsonl"),
            echo,
            lock: Arc::new(Mutex::new(())),
        })
    }

    /// Every mail sent so far, newest first. A line torn by a crash is skipped.
    pub async fn list(&self) -> std::io::Result<Vec<Delivered>> {
        let _guard = self.lock.lock().await;
        read_jsonl_newest_first(&self.path).await
    }

    /// Appends one mail with one `write`, not fsynced. The line is in the kernel's cache once
    /// `send` returns, so killing the server loses nothing; a machine crash may lose the last
    /// mails. That is the trade-off of a real mail service too (accepted mail can still be
    /// lost): the user asks again, and the send was already counted against the address's
    /// limits in the store, so the loss cannot be used to bypass them. An fsync per mail cost
    /// more than the rest of a send.
    fn append(&self, line: &str) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        // A leading newline ends any line a crash tore, so this one parses on its own.
        file.write_all(format!("\n{line}").as_bytes())
    }
}

/// The entries of a JSON-lines file, newest (last) first; lines that do not parse (a line a
/// crash tore) are skipped, a missing file is empty.
pub(crate) async fn read_jsonl_newest_first<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> std::io::Result<Vec<T>> {
    let text = match tokio::fs::read_to_string(path).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut entries: Vec<T> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    entries.reverse();
    Ok(entries)
}

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        if mail.to.domain().ends_with(".invalid") {
            return Err(MailError("recipient domain is reserved (.invalid)".into()));
        }
        let delivered = Delivered {
            to: mail.to.to_string(),
            subject: mail.subject.clone(),
            text: mail.text.clone(),
            html: mail.html.clone(),
            sent_at_millis: contact_channels::domain::now_millis(),
        };
        let line = serde_json::to_string(&delivered).map_err(|e| MailError(e.to_string()))?;
        let _guard = self.lock.lock().await;
        // A write to the kernel's cache, without fsync: not worth a blocking-pool thread.
        self.append(&line).map_err(|e| MailError(e.to_string()))?;
        if self.echo {
            let rule = "-".repeat(72);
            println!(
                "{rule}\nMAIL to {}\nSubject: {}\n\n{}{rule}",
                delivered.to, delivered.subject, delivered.text
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contact_channels::domain::EmailAddress;

    fn mail(to: &str) -> Mail {
        Mail {
            to: EmailAddress::parse(to).unwrap(),
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
        }
    }

    #[tokio::test]
    async fn outbox_keeps_mail_newest_first_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), false).unwrap();
        outbox.send(&mail("a@example.com")).await.unwrap();
        outbox.send(&mail("b@example.com")).await.unwrap();
        let reopened = Outbox::open(dir.path(), false).unwrap();
        let list = reopened.list().await.unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].to, "b@example.com");
    }

    #[tokio::test]
    async fn outbox_refuses_invalid_domains() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), false).unwrap();
        assert!(outbox.send(&mail("a@example.invalid")).await.is_err());
        assert!(outbox.list().await.unwrap().is_empty());
    }
}
