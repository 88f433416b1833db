//! `make run`: the whole API on 127.0.0.1 with the embedded store and the local outbox, plus
//! the local-only mailbox routes (docs/api.md §7). `token USER` mints a dev client token;
//! `create-table` creates `TABLE_NAME` on the configured DynamoDB endpoint.

use std::process::ExitCode;

use cc_local::server;
use contact_channels::config::{Config, Profile};

fn usage() -> ExitCode {
    eprintln!("usage: contact-channels-local [serve | token USER_ID [TTL_SECONDS] | create-table]");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::from_env(Profile::Local) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => match server::serve(config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("contact-channels-local: {e}");
                ExitCode::FAILURE
            }
        },
        ["token", user] | ["token", user, _] => {
            let ttl = match args.get(2).map(|t| t.parse::<u64>()) {
                None => 86_400,
                Some(Ok(ttl)) => ttl,
                Some(Err(_)) => return usage(),
            };
            match server::mint_token(&config, user, ttl) {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("contact-channels-local: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        ["create-table"] => match server::create_table(&config).await {
            Ok(table) => {
                println!("created table {table}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("contact-channels-local: {e}");
                ExitCode::FAILURE
            }
        },
        _ => usage(),
    }
}
