//! Secrets read from Secrets Manager during Init, by ARN (`VERIFICATION_SECRET_ARN`,
//! `JWT_HS256_SECRET_ARN`), so that no secret sits in a function's configuration. The client
//! comes from the shared SDK config: same HTTP client, same TLS stack, certificates loaded once.
//!
//! Rotation without invalidating outstanding codes and links: new codes are signed with
//! `AWSCURRENT`; `AWSPREVIOUS` still verifies for one code or link lifetime after the current
//! version was created (every code it signed has expired by then), and `AWSPENDING`, a version
//! staged to become current, verifies too, so environments started before and after the switch
//! understand each other's codes.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use contact_channels::config::{AcceptedSecret, Secret};

/// One version of a secret, by staging label.
async fn version(
    client: &Client,
    arn: &str,
    stage: &str,
) -> Result<Option<GetSecretValueOutput>, String> {
    match client
        .get_secret_value()
        .secret_id(arn)
        .version_stage(stage)
        .send()
        .await
    {
        Ok(out) => Ok(Some(out)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => {
            use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
            // The code names the problem (AccessDeniedException, …); the message may name the
            // secret's ARN, which is no secret, but nothing more is needed.
            Err(format!(
                "cannot read secret {stage}: {}",
                e.code().unwrap_or("no service code")
            ))
        }
    }
}

fn value(out: &GetSecretValueOutput) -> Result<Secret, String> {
    out.secret_string()
        .map(|s| Secret::new(s.as_bytes().to_vec()))
        .ok_or_else(|| "the secret has no SecretString".to_owned())
}

/// A whole secret (`AWSCURRENT`), e.g. the HS256 key of client tokens.
pub async fn current(client: &Client, arn: &str) -> Result<Secret, String> {
    match version(client, arn, "AWSCURRENT").await? {
        Some(out) => value(&out),
        None => Err("the secret does not exist or has no AWSCURRENT version".to_owned()),
    }
}

/// The verification secret: `AWSCURRENT` to sign, and the versions that still verify. The
/// calls go one after the other on one connection (one TLS handshake, not three).
pub async fn verification(
    client: &Client,
    arn: &str,
    lifetime_millis: i64,
) -> Result<(Secret, Vec<AcceptedSecret>), String> {
    let Some(current) = version(client, arn, "AWSCURRENT").await? else {
        return Err("the secret does not exist or has no AWSCURRENT version".to_owned());
    };
    let mut accepted = Vec::new();
    if let Some(pending) = version(client, arn, "AWSPENDING").await?
        && pending.version_id() != current.version_id()
    {
        accepted.push(AcceptedSecret {
            secret: value(&pending)?,
            until_millis: i64::MAX,
        });
    }
    // The previous version signed codes until the current one was created; the last of them
    // dies one lifetime later.
    let rotated_at = current
        .created_date()
        .and_then(|d| d.to_millis().ok())
        .unwrap_or(0);
    let until = rotated_at.saturating_add(lifetime_millis);
    if until > contact_channels::domain::now_millis()
        && let Some(previous) = version(client, arn, "AWSPREVIOUS").await?
    {
        accepted.push(AcceptedSecret {
            secret: value(&previous)?,
            until_millis: until,
        });
    }
    Ok((value(&current)?, accepted))
}
