//! Verification use cases: send a code or link (with its limits and the refused-mail rollback),
//! attempt a code, redeem or check a link (docs/api.md §5.6–5.7).

use std::time::Duration;

use super::retry::{Persistence, backoff, persisting, retrying, settled, written};
use super::{ChannelRef, SendVerification, Sent, Service, resolve};
use crate::auth::Caller;
use crate::domain::channel::{ChannelRecord, Digest, StoredChannel, Verification};
use crate::domain::secret::{VerificationCode, generate_link_token};
use crate::domain::{Strategy, now_millis};
use crate::error::{Action, ApiError};
use crate::mail::{Mail, MailKind, compose};
use crate::rules::send_limits::SendLimits;
use crate::rules::verification::{LinkRefusal, check_link, redeemed};
use crate::store::{Change, ChannelStore, PrimaryChange, RedeemError, SendLogChange, WriteError};
use crate::telemetry::{self, Metric};

/// A send whose new code is stored and whose mail is ready to go.
struct Prepared {
    before: ChannelRecord,
    sent: ChannelRecord,
    mail: Mail,
    at: i64,
    result: Sent,
}

/// How hard a refused send's rollback presses on through store failures before the send answers
/// `500` instead of `502`: 6 runs with waits of 50 ms doubling (1.55 s of waiting in all), and 5 s
/// at most, well inside a function's 15 s timeout.
pub(crate) const ROLLBACK: Persistence = Persistence {
    attempts: 6,
    first_wait: Duration::from_millis(50),
    budget: Duration::from_secs(5),
};

/// Lost races a single rollback run reads again and retries before it counts as failed.
const ROLLBACK_RACES: u32 = 16;

fn millis(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
}

impl<S: ChannelStore + ?Sized> Service<S> {
    /// Mails a new code or link, replacing any outstanding one. The new code is stored before
    /// the mail goes out, so a send needs no third write on success; if the mail service
    /// refuses, the previous state is put back and `502` answered.
    pub async fn send_verification(
        &self,
        caller: &Caller,
        at: ChannelRef,
        command: SendVerification,
    ) -> Result<Sent, ApiError> {
        let Some(mailer) = self.mailer.as_ref() else {
            tracing::error!("send-verification reached a process that has no mailer");
            return Err(ApiError::Internal);
        };
        let user = resolve(caller, &at.user, Action::Verify)?;
        let (user, at, command) = (&user, &at, &command);
        let prepared = retrying(|| async move {
            let current = self.find_of(user, at).await?;
            self.prepare_send(current, command).await
        })
        .await
        .inspect_err(|e| self.count_rate_limited(e))?;
        if let Err(e) = mailer.send(&prepared.mail).await {
            telemetry::count(Metric::MailDeliveryFailed);
            tracing::warn!(error = %e, "verification mail refused by the mail service");
            // docs/api.md §5.6: a 502 promises the state is as before the request. When it cannot
            // be put back, the honest answer is a 500.
            if !self.roll_back_send(&prepared).await {
                tracing::error!(
                    "a refused send could not be rolled back: answering 500 INTERNAL_ERROR, not 502"
                );
                return Err(ApiError::Internal);
            }
            return Err(ApiError::EmailDeliveryFailed);
        }
        let strategy = prepared.result.strategy.as_str();
        tracing::info!(strategy, "verification mail accepted by the mail service");
        telemetry::count_by(Metric::VerificationMailSent, "Strategy", strategy);
        Ok(prepared.result)
    }

    /// Which limit refused a send: a wait longer than the cooldown can only be the daily cap's.
    fn count_rate_limited(&self, e: &ApiError) {
        if let ApiError::RateLimited(wait) = e {
            let limit = if *wait <= self.limits().send_cooldown_seconds {
                "cooldown"
            } else {
                "daily_cap"
            };
            tracing::info!(
                limit,
                retry_after_seconds = wait,
                "verification mail refused by a send limit"
            );
            telemetry::count_by(Metric::RateLimited, "Limit", limit);
        }
    }

    /// Checks a send in the endpoint's order (verified, allow-list, limits) and stores the new
    /// code with the send counted; `None` when the write was stale.
    async fn prepare_send(
        &self,
        current: StoredChannel,
        command: &SendVerification,
    ) -> Result<Option<Prepared>, ApiError> {
        let before = current.record;
        if before.is_verified {
            return Err(ApiError::EmailAlreadyVerified);
        }
        let callback = match command {
            SendVerification::Link { callback } => Some(callback),
            SendVerification::Code { page } => page.as_ref(),
        };
        if callback.is_some_and(|url| !url.allowed_by(&self.config.allowed_callback_urls)) {
            return Err(ApiError::RedirectUrlNotWhitelisted);
        }
        let now = now_millis();
        let (verification, mail) = self.compose(&before, command, now)?;
        let result = Sent {
            strategy: verification.strategy,
            expires_at_millis: verification.expires_at_millis,
        };
        let mut after = before.clone();
        after.verification = Some(verification);
        after.last_sent_at_millis = Some(now);
        let change = Change::Update {
            before: before.clone(),
            after,
            primary: PrimaryChange::Keep,
            was_primary: current.is_primary,
            // The cooldown and the daily cap protect the address, whichever channel or user
            // sends to it, so they are checked against its log atomically with this write.
            send_log: Some(SendLogChange::Admit {
                address: before.value.clone(),
                at: now,
                limits: SendLimits {
                    cap: self.limits().max_sends_per_day,
                    cooldown_millis: millis(self.limits().send_cooldown_seconds),
                },
            }),
        };
        Ok(settled(self.store.apply(change).await)?
            .map(written)
            .transpose()?
            .map(|stored| Prepared {
                before,
                sent: stored.record,
                mail,
                at: now,
                result,
            }))
    }

    /// A fresh code or link for `record`: its stored (hashed) form and the mail carrying it.
    fn compose(
        &self,
        record: &ChannelRecord,
        command: &SendVerification,
        now: i64,
    ) -> Result<(Verification, Mail), ApiError> {
        let app = &self.config.app_name;
        let (strategy, ttl, digest, mail) = match command {
            SendVerification::Link { callback } => {
                let ttl = self.limits().link_ttl_seconds;
                let token = generate_link_token().map_err(|_| ApiError::Internal)?;
                let link = callback.with_code(&token);
                let mail = compose(app, &record.value, &MailKind::Link { url: &link }, ttl);
                (Strategy::EmailLink, ttl, self.hasher.link(&token), mail)
            }
            SendVerification::Code { page } => {
                let ttl = self.limits().code_ttl_seconds;
                let code = VerificationCode::generate().map_err(|_| ApiError::Internal)?;
                let kind = MailKind::Code {
                    code: code.expose(),
                    page: page.as_ref().map(|p| p.as_str()),
                };
                let mail = compose(app, &record.value, &kind, ttl);
                (
                    Strategy::EmailCode,
                    ttl,
                    self.hasher.code(record.id, &code),
                    mail,
                )
            }
        };
        let verification = Verification {
            strategy,
            digest,
            expires_at_millis: now.saturating_add(millis(ttl)),
            attempts: 0,
            used: false,
        };
        Ok((verification, mail))
    }

    /// Puts back the verification state from before a send whose mail was refused, and takes
    /// the send out of the cooldown and the daily cap. Leaves alone whatever a later request did.
    /// Store failures are retried (a throttled or dropped write changed nothing, and a write that
    /// did land makes the next run a no-op); `false` when the state could not be restored.
    async fn roll_back_send(&self, send: &Prepared) -> bool {
        persisting(
            ROLLBACK,
            "rolling back a refused send",
            |e: &WriteError| matches!(e, WriteError::Store(_) | WriteError::Stale),
            || self.roll_back_once(send),
        )
        .await
        .is_some()
    }

    /// One run of the rollback: read the channel, write the undoing change against what was
    /// read, and read again after a lost race.
    async fn roll_back_once(&self, send: &Prepared) -> Result<(), WriteError> {
        for attempt in 0..ROLLBACK_RACES {
            let Some(current) = self.store.get(&send.sent.user_id, send.sent.id).await? else {
                return Ok(());
            };
            match self.store.apply(roll_back_change(send, current)).await {
                Ok(_) => return Ok(()),
                Err(WriteError::Stale) => backoff(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(WriteError::Stale)
    }

    /// Checks a 6-digit code; a wrong guess is counted atomically (docs/api.md §5.7).
    pub async fn attempt(
        &self,
        caller: &Caller,
        at: ChannelRef,
        code: VerificationCode,
    ) -> Result<StoredChannel, ApiError> {
        let user = resolve(caller, &at.user, Action::Verify)?;
        let (user, at, code) = (&user, &at, &code);
        retrying(|| async move {
            let current = self.find_of(user, at).await?;
            let (change, outcome) = self.guess(current, code)?;
            // The guess counts only if it is written against the version it was checked on:
            // concurrent guesses serialize here, so no interleaving gets more than the max.
            match settled(self.store.apply(change).await)? {
                Some(stored) => {
                    count_guess(&outcome);
                    outcome.and_then(|()| written(stored)).map(Some)
                }
                None => Ok(None),
            }
        })
        .await
        .inspect_err(|e| {
            if *e == ApiError::VerificationCodeExpired {
                telemetry::count(Metric::VerificationExpired);
            }
        })
    }

    /// Judges one guess at the outstanding code: the change to write (verified, or one more
    /// wrong guess) and what to answer once it is written.
    fn guess(
        &self,
        current: StoredChannel,
        code: &VerificationCode,
    ) -> Result<(Change, Result<(), ApiError>), ApiError> {
        let max = self.limits().max_code_attempts;
        let before = current.record;
        if before.is_verified {
            return Err(ApiError::EmailAlreadyVerified);
        }
        let Some(v) = before
            .verification
            .as_ref()
            .filter(|v| v.strategy == Strategy::EmailCode)
        else {
            return Err(ApiError::VerificationCodeNotFound);
        };
        if v.attempts >= max {
            return Err(ApiError::VerificationCodeMaxAttemptsReached);
        }
        let now = now_millis();
        if now >= v.expires_at_millis {
            return Err(ApiError::VerificationCodeExpired);
        }
        let (after, outcome) = if self.hasher.code_matches(before.id, code, &v.digest, now) {
            (redeemed(&before), Ok(()))
        } else {
            let attempts = v.attempts + 1;
            let mut after = before.clone();
            if let Some(v) = after.verification.as_mut() {
                v.attempts = attempts;
            }
            let refusal = if attempts >= max {
                ApiError::VerificationCodeMaxAttemptsReached
            } else {
                ApiError::VerificationCodeIncorrect {
                    attempts_remaining: max - attempts,
                }
            };
            (after, Err(refusal))
        };
        let change = Change::Update {
            before,
            after,
            primary: PrimaryChange::Keep,
            was_primary: current.is_primary,
            send_log: None,
        };
        Ok((change, outcome))
    }

    /// Redeems a link token: the channel becomes verified and the token is used up.
    pub async fn verify_link(&self, token: &str) -> Result<(), ApiError> {
        let now = now_millis();
        let digests = self.hasher.links(token, now);
        // Mid-rotation, a link may be stored under the previous secret's digest: one more
        // lookup, only for a token the current secret does not know.
        let Some((last, earlier)) = digests.split_last() else {
            return Err(ApiError::VerificationCodeNotFound);
        };
        for digest in earlier {
            match self.redeem(digest, now).await {
                Err(ApiError::VerificationCodeNotFound) => continue,
                other => return other,
            }
        }
        self.redeem(last, now).await
    }

    async fn redeem(&self, digest: &Digest, now: i64) -> Result<(), ApiError> {
        match self.store.redeem_link(digest, now).await {
            Ok(()) => {
                telemetry::count_by(Metric::VerificationSucceeded, "Strategy", "email_link");
                Ok(())
            }
            Err(RedeemError::Refused(r)) => {
                if r == LinkRefusal::Expired {
                    telemetry::count(Metric::VerificationExpired);
                }
                Err(r.into())
            }
            Err(RedeemError::Store(e)) => Err(e.into()),
        }
    }

    /// Says whether a link token would verify its channel, without using it up.
    pub async fn check_link(&self, token: &str) -> Result<(), ApiError> {
        let now = now_millis();
        for digest in self.hasher.links(token, now) {
            if let Some((user, id)) = self.store.find_link(&digest).await? {
                let record = self.store.get(&user, id).await?.map(|s| s.record);
                return Ok(check_link(record.as_ref(), &digest, now)?);
            }
        }
        Err(ApiError::VerificationCodeNotFound)
    }
}

/// Counts a written guess: right, wrong, or the wrong one that burned the code.
fn count_guess(outcome: &Result<(), ApiError>) {
    match outcome {
        Ok(()) => telemetry::count_by(Metric::VerificationSucceeded, "Strategy", "email_code"),
        Err(ApiError::VerificationCodeMaxAttemptsReached) => {
            telemetry::count(Metric::VerificationIncorrect);
            telemetry::count(Metric::VerificationBurned);
        }
        Err(_) => telemetry::count(Metric::VerificationIncorrect),
    }
}

/// The change that undoes a refused send on the channel as it is now: the previous code comes
/// back only if it is still the one we replaced and the address is unchanged and unverified.
fn roll_back_change(send: &Prepared, current: StoredChannel) -> Change {
    let ours = match (&current.record.verification, &send.sent.verification) {
        (Some(a), Some(b)) => a.digest.matches(&b.digest),
        _ => false,
    };
    let (record, was_primary) = (current.record, current.is_primary);
    let mut after = record.clone();
    if ours {
        after.verification = if record.value == send.before.value && !record.is_verified {
            send.before.verification.clone()
        } else {
            None
        };
    }
    if record.last_sent_at_millis == Some(send.at) {
        after.last_sent_at_millis = send.before.last_sent_at_millis;
    }
    Change::Update {
        before: record,
        after,
        primary: PrimaryChange::Keep,
        was_primary,
        send_log: Some(SendLogChange::Release {
            address: send.sent.value.clone(),
            at: send.at,
        }),
    }
}
