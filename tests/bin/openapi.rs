//! `make openapi`: writes the OpenAPI document generated from the code (the route table, the
//! request and response types, the errors of each route) to the given path, `openapi.json` at
//! the repository root. The `openapi` test fails whenever that file and the code disagree.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: cc-openapi PATH");
        return ExitCode::from(2);
    };
    match std::fs::write(&path, contact_channels::http::openapi::to_json()) {
        Ok(()) => {
            println!("wrote {path}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cc-openapi: cannot write {path}: {e}");
            ExitCode::FAILURE
        }
    }
}
