//! The local mailer: every mail is appended to `DATA_DIR/outbox.jsonl` (kept across restarts,
//! the newest [`OUTBOX_MAX_BYTES`] of it) and printed to standard output, the console mailbox
//! of `make run`. Recipients under the
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

/// The outbox keeps about its newest this many bytes (about three thousand mails): a mailbox to try
/// the API with, not an archive, and a data directory that does not grow with every send.
pub const OUTBOX_MAX_BYTES: u64 = 2 << 20;

#[derive(Clone)]
pub struct Outbox {
    echo: bool,
    file: Arc<Mutex<JsonLines>>,
}

impl Outbox {
    /// `echo` prints each mail to standard output as it is sent.
    pub fn open(dir: &Path, echo: bool) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let file = JsonLines::open(dir.join("outbox.jsonl"), OUTBOX_MAX_BYTES)?;
        Ok(Outbox {
            echo,
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Every mail kept, newest first. A line torn by a crash is skipped.
    pub async fn list(&self) -> std::io::Result<Vec<Delivered>> {
        let file = self.file.lock().await;
        read_jsonl_newest_first(&file.path).await
    }
}

/// A JSON-lines file appended to, of which only about the newest `max_bytes` are kept: past
/// that, the older half is dropped.
pub(crate) struct JsonLines {
    pub(crate) path: PathBuf,
    /// Open for appending, so an append is one `write`, not an open, a write and a close.
    file: std::fs::File,
    bytes: u64,
    max_bytes: u64,
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

impl JsonLines {
    pub(crate) fn open(path: PathBuf, max_bytes: u64) -> std::io::Result<JsonLines> {
        let file = open_append(&path)?;
        let bytes = file.metadata()?.len();
        Ok(JsonLines {
            path,
            file,
            bytes,
            max_bytes,
        })
    }

    /// Appends `lines`, each preceded by a newline (which ends any line a crash tore, so the
    /// next one parses on its own), with one `write` and no fsync: see the callers for what
    /// that costs.
    pub(crate) fn append(&mut self, lines: &str) -> std::io::Result<()> {
        if self.bytes + lines.len() as u64 > self.max_bytes {
            self.drop_older_half()?;
        }
        self.file.write_all(lines.as_bytes())?;
        self.bytes += lines.len() as u64;
        Ok(())
    }

    /// Rewrites the file with its newest half, by renaming a copy over it: a crash leaves the
    /// old file or the new one. Each rewrite copies half of what was appended since the last,
    /// so appending stays linear.
    fn drop_older_half(&mut self) -> std::io::Result<()> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let half = text
            .len()
            .saturating_sub(usize::try_from(self.max_bytes / 2).unwrap_or(0));
        let start = text[half..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(text.len(), |i| half + i);
        let kept = &text[start..];
        let tmp = self.path.with_extension("jsonl.tmp");
        std::fs::write(&tmp, kept)?;
        std::fs::rename(&tmp, &self.path)?;
        self.file = open_append(&self.path)?;
        self.bytes = kept.len() as u64;
        Ok(())
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
        // Not fsynced: the line is in the kernel's cache once `send` returns, so killing the
        // server loses nothing; a machine crash may lose the last mails. A mail service can
        // lose accepted mail too: the user asks again, and the send was already counted
        // against the address's limits in the store, so a lost mail cannot bypass them. An
        // fsync per mail cost more than the rest of a send. For the same reason the write is
        // not worth a blocking-pool thread.
        let mut file = self.file.lock().await;
        file.append(&format!("\n{line}"))
            .map_err(|e| MailError(e.to_string()))?;
        if self.echo {
            // Formatted first and written whole: `println!` on a line-buffered stdout makes a
            // `write` for every piece that holds a newline (five per mail), each waking whoever
            // reads the terminal or pipe.
            let rule = "-".repeat(72);
            let text = format!(
                "{rule}\nMAIL to {}\nSubject: {}\n\n{}{rule}\n",
                delivered.to, delivered.subject, delivered.text
            );
            // A closed or full console must not fail a mail that is already in the outbox.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
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

    #[test]
    fn a_capped_file_keeps_its_newest_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let mut file = JsonLines::open(path.clone(), 1000).unwrap();
        for i in 0..500 {
            file.append(&format!("\n{{\"n\":{i}}}")).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() <= 1000, "{}", text.len());
        let kept: Vec<u32> = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.trim_start_matches("{\"n\":")
                    .trim_end_matches('}')
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(kept.len() > 40, "{}", kept.len());
        assert_eq!(kept.last(), Some(&499));
        assert!(kept.windows(2).all(|w| w[1] == w[0] + 1));
        let reopened = JsonLines::open(path, 1000).unwrap();
        assert_eq!(reopened.bytes, text.len() as u64);
    }

    #[tokio::test]
    async fn outbox_refuses_invalid_domains() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), false).unwrap();
        assert!(outbox.send(&mail("a@example.invalid")).await.is_err());
        assert!(outbox.list().await.unwrap().is_empty());
    }
}
