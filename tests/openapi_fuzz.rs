//! The fuzzer holds the server to its document: schemathesis (from the project venv) reads the
//! committed `openapi.json` and sends valid and invalid requests to every operation of a spawned
//! local server, as a server (`x-server-key`) and as a client (a dev token), with every check it
//! has on: no 5xx, only documented statuses, content types and headers, bodies that match
//! their schemas, invalid input refused, valid input accepted, auth not ignored, `405` with
//! `Allow` for other methods. A fixed seed and a bounded number of examples keep it repeatable
//! and short. `make test-openapi` (part of `make test`) installs schemathesis and runs it.

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use cc_tests::{Backend, LocalServer, SERVER_KEY, client_token};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs schemathesis against `base` with the committed settings and `auth` (an `[auth]` table,
/// so that it knows which security scheme the credentials satisfy); the report on failure.
fn fuzz(base: &str, auth: &str, seed: &str) -> Result<(), String> {
    let root = root();
    let schemathesis = root.join(".venv/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: run `make test-openapi`, which installs it",
        schemathesis.display()
    );
    let settings = std::fs::read_to_string(root.join("tests/schemathesis.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, format!("{settings}\n{auth}\n")).unwrap();
    let output = Command::new(&schemathesis)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(root.join("openapi.json"))
        .args(["--url", base, "--checks", "all", "--seed", seed])
        .args(["--no-color", "--generation-database", "none"])
        .current_dir(dir.path())
        .output()
        .expect("run schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        // The summary, for the test log: operations, phases, counts.
        let summary = report.rsplit_once("SUMMARY").map_or("", |(_, s)| s);
        println!("{summary}");
        Ok(())
    } else {
        Err(report)
    }
}

#[tokio::test]
#[ignore = "needs schemathesis in .venv; `make test-openapi` (part of `make test`) runs it"]
async fn the_server_answers_what_its_document_says_to_a_fuzzer() {
    // Cooldown off (as in the other black-box suites): a resend is then judged on the rest.
    // The document's example callback URL is allowed, so its examples reach a real send.
    let server = LocalServer::start_with(
        Backend::Local,
        &[(
            "ALLOWED_CALLBACK_URLS",
            "https://app.example.com,http://localhost:*,http://127.0.0.1:*",
        )],
    )
    .await;
    let as_server = format!("[auth.openapi.serverKey]\napi_key = \"{SERVER_KEY}\"");
    let as_client = format!(
        "[auth.openapi.bearerAuth]\nbearer = \"{}\"",
        client_token("alice")
    );
    for (who, auth, seed) in [("server", &as_server, "1"), ("client", &as_client, "2")] {
        if let Err(report) = fuzz(&server.base, auth, seed) {
            panic!("schemathesis, as a {who}, found failures:\n{report}");
        }
    }
    let logs = server.logs();
    // The level is the second field of a text line (`<time>  ERROR target: …`); `ERROR` also
    // occurs in error codes such as `SCHEMA_ERROR`, which are answers, not server errors.
    let errors: Vec<&str> = logs
        .lines()
        .filter(|line| line.split_whitespace().nth(1) == Some("ERROR"))
        .collect();
    assert!(
        errors.is_empty(),
        "the server logged errors:\n{}",
        errors.join("\n")
    );
    assert!(
        !logs.contains(SERVER_KEY),
        "the server logged a credential:\n{logs}"
    );
}
