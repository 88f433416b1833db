//! moto in server mode: an AWS-compatible endpoint (DynamoDB, SES v2) started once per test
//! binary on a free loopback port. Tests isolate themselves by table name and sender address.
//! A watchdog shell ends moto when the test process ends, however it ends.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

pub const REGION: &str = "us-east-1";

pub struct Moto {
    pub endpoint: String,
    /// The watchdog shell; it outlives nothing but this test process.
    _watchdog: std::sync::Mutex<std::process::Child>,
}

/// The venv's Python, which has `moto[server]` (`make test` installs it).
fn venv_python() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        path.exists(),
        "{} is missing: `make test` creates the project venv and installs moto[server] into it",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The moto server of this test binary, started on first use.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let port = free_port();
        let script = r#""$PYTHON" "$LAUNCHER" -H 127.0.0.1 -p "$MOTO_PORT" >/dev/null 2>&1 & m=$!
while kill -0 "$WATCH_PID" 2>/dev/null && kill -0 "$m" 2>/dev/null; do sleep 0.5; done
kill "$m" 2>/dev/null"#;
        let watchdog = Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("PYTHON", venv_python())
            .env(
                "LAUNCHER",
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("moto_serial.py"),
            )
            .env("MOTO_PORT", port.to_string())
            .env("WATCH_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && probe::get_ok(&format!("{endpoint}/moto-api/data.json"))
            {
                return Moto {
                    endpoint,
                    _watchdog: std::sync::Mutex::new(watchdog),
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut watchdog = watchdog;
        let _ = watchdog.kill();
        let _ = watchdog.wait();
        panic!("moto_server did not start on port {port}");
    })
}

mod probe {
    /// A tiny blocking HTTP GET for the readiness check (it runs outside any async runtime).
    pub fn get_ok(url: &str) -> bool {
        use std::io::{Read, Write};
        let Some(rest) = url.strip_prefix("http://") else {
            return false;
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let Ok(mut s) = std::net::TcpStream::connect(host) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        if s.write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .is_err()
        {
            return false;
        }
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
    }
}

impl Moto {
    /// Environment that points a process (SDK and all) at this moto.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let creds =
            aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "moto");
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(creds)
            .load()
            .await
    }

    /// A fresh table with the service's key design.
    pub async fn new_table(&self) -> String {
        let name = format!("cc-test-{}", uuid_like());
        let client = aws_sdk_dynamodb::Client::new(&self.sdk_config().await);
        cc_aws::dynamo::DynamoStore::create_table(&client, &name)
            .await
            .expect("create table");
        name
    }

    /// A fresh sender identity, verified in moto's SES.
    pub async fn new_sender(&self) -> String {
        let sender = format!("no-reply-{}@example.com", uuid_like());
        let client = aws_sdk_sesv2::Client::new(&self.sdk_config().await);
        client
            .create_email_identity()
            .email_identity(&sender)
            .send()
            .await
            .expect("create identity");
        sender
    }

    /// A fresh Secrets Manager secret holding `value` (its `AWSCURRENT`); returns its ARN.
    pub async fn new_secret(&self, value: &str) -> String {
        let client = aws_sdk_secretsmanager::Client::new(&self.sdk_config().await);
        let out = client
            .create_secret()
            .name(format!("cc-test-{}", uuid_like()))
            .secret_string(value)
            .send()
            .await
            .expect("create secret");
        out.arn().expect("secret ARN").to_owned()
    }

    /// Rotates the secret `arn` to `value`, as `put-secret-value` does: the new version becomes
    /// `AWSCURRENT` and the old one `AWSPREVIOUS`.
    pub async fn rotate_secret(&self, arn: &str, value: &str) {
        let client = aws_sdk_secretsmanager::Client::new(&self.sdk_config().await);
        client
            .put_secret_value()
            .secret_id(arn)
            .secret_string(value)
            .send()
            .await
            .expect("put secret value");
    }

    /// Stages `value` as the secret's `AWSPENDING` version (the first step of a rotation);
    /// returns the new version's id.
    pub async fn stage_secret(&self, arn: &str, value: &str) -> String {
        let client = aws_sdk_secretsmanager::Client::new(&self.sdk_config().await);
        let out = client
            .put_secret_value()
            .secret_id(arn)
            .secret_string(value)
            .version_stages("AWSPENDING")
            .send()
            .await
            .expect("stage a secret version");
        let version = out.version_id().expect("version id").to_owned();
        let stages = client
            .describe_secret()
            .secret_id(arn)
            .send()
            .await
            .expect("describe secret")
            .version_ids_to_stages()
            .and_then(|m| m.get(&version).cloned())
            .unwrap_or_default();
        assert_eq!(stages, ["AWSPENDING"], "staged, not current");
        version
    }

    /// Makes `version` the secret's `AWSCURRENT` (the old current becomes `AWSPREVIOUS`) and
    /// takes `AWSPENDING` off it: the last step of a rotation.
    pub async fn promote_secret(&self, arn: &str, version: &str) {
        let client = aws_sdk_secretsmanager::Client::new(&self.sdk_config().await);
        let described = client
            .describe_secret()
            .secret_id(arn)
            .send()
            .await
            .expect("describe secret");
        let current = described
            .version_ids_to_stages()
            .and_then(|m| {
                m.iter()
                    .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
                    .map(|(id, _)| id.clone())
            })
            .expect("a current version");
        client
            .update_secret_version_stage()
            .secret_id(arn)
            .version_stage("AWSCURRENT")
            .move_to_version_id(version)
            .remove_from_version_id(current)
            .send()
            .await
            .expect("promote");
        client
            .update_secret_version_stage()
            .secret_id(arn)
            .version_stage("AWSPENDING")
            .remove_from_version_id(version)
            .send()
            .await
            .expect("unstage");
    }

    /// Mail SES accepted from `sender`, newest first, in the shape of `/_dev/mailbox.json`.
    /// moto keeps the HTML part only; `text` is derived from it.
    pub async fn sent_mail(&self, sender: &str) -> Vec<Value> {
        let data: Value = reqwest::get(format!("{}/moto-api/data.json", self.endpoint))
            .await
            .expect("moto data")
            .json()
            .await
            .expect("moto json");
        let mut mails: Vec<Value> = data["ses"]["Message"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m["source"] == sender)
            .map(|m| {
                let html = m["body"].as_str().unwrap_or_default().to_owned();
                serde_json::json!({
                    "to": m["destinations"]["ToAddresses"][0],
                    "subject": m["subject"],
                    "text": html_to_text(&html),
                    "html": html,
                })
            })
            .collect();
        mails.reverse();
        mails
    }
}

/// Tags become spaces, entities are decoded: enough to find codes and links in test mail.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

pub fn uuid_like() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
