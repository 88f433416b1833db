//! The service: one `handle` for every route, in the contract's order of checks (API.md §1:
//! 413 → routing → 401 → 400 → `me` → 403 → 404 → the endpoint's own errors).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ::http::{Method, StatusCode};
use bytes::Bytes;
use serde_json::json;

use crate::auth::{Authenticator, Caller, KeySetSource};
use crate::config::{Config, Limits};
use crate::domain::callback::{CallbackError, check_callback, link_with_code};
use crate::domain::channel::{ChannelRecord, StoredChannel, Verification};
use crate::domain::secret::{Hasher, VerificationCode, generate_link_token};
use crate::domain::{ChannelId, EmailAddress, Strategy, UserId, UserRef, now_millis};
use crate::error::{Action, ApiError};
use crate::http::{Fields, MAX_BODY_BYTES, Route, decode_segment, json_response, query_param};
use crate::mail::{MailKind, Mailer, compose};
use crate::rules::send_limits::{ceil_seconds, daily_wait};
use crate::rules::verification::{self as model, LinkRefusal, check_link};
use crate::store::{
    Change, ChannelStore, PrimaryChange, RedeemError, SendLogChange, StoreError, WriteError,
};

/// How often a write that lost a race re-reads and tries again before giving up with a 500.
const MAX_RETRIES: u32 = 64;

type Response = ::http::Response<Bytes>;

pub struct App {
    config: Config,
    auth: Authenticator,
    hasher: Hasher,
    store: Arc<dyn ChannelStore>,
    mailer: Arc<dyn Mailer>,
    routes: &'static [Route],
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::Internal
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::ValueExists => ApiError::ChannelAlreadyExists,
            WriteError::AuthTaken => ApiError::UsedForAuthBySomeoneElse,
            WriteError::TooMany => ApiError::TooManyChannels,
            WriteError::DailyCap(wait) => ApiError::RateLimited(wait),
            WriteError::Store(e) => e.into(),
            WriteError::Stale => {
                tracing::error!("write kept losing races; gave up");
                ApiError::Internal
            }
        }
    }
}

impl From<LinkRefusal> for ApiError {
    fn from(r: LinkRefusal) -> Self {
        match r {
            LinkRefusal::NotFound => ApiError::VerificationCodeNotFound,
            LinkRefusal::Expired => ApiError::VerificationCodeExpired,
            LinkRefusal::AlreadyUsed => ApiError::VerificationCodeAlreadyUsed,
        }
    }
}

/// Waits a little before retrying a lost race, with jitter so racers spread out.
async fn backoff(attempt: u32) {
    let mut b = [0u8; 1];
    let jitter = getrandom::fill(&mut b)
        .map(|_| u64::from(b[0] % 8))
        .unwrap_or(3);
    let base = u64::from(attempt.min(5));
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

/// Runs an optimistic read-check-write step until it stops losing races: the step answers
/// `Ok(None)` when its write was stale, and is then run again (reading afresh) after a
/// jittered wait, at most `MAX_RETRIES` times.
async fn retrying<T, Fut>(mut step: impl FnMut() -> Fut) -> Result<T, ApiError>
where
    Fut: Future<Output = Result<Option<T>, ApiError>>,
{
    for attempt in 0..MAX_RETRIES {
        if let Some(done) = step().await? {
            return Ok(done);
        }
        backoff(attempt).await;
    }
    Err(WriteError::Stale.into())
}

/// A write's result as `retrying` steps use it: the channel written, or `None` if stale.
fn settled(
    result: Result<Option<StoredChannel>, WriteError>,
) -> Result<Option<StoredChannel>, ApiError> {
    match result {
        Ok(Some(stored)) => Ok(Some(stored)),
        Ok(None) => Err(ApiError::Internal),
        Err(WriteError::Stale) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn resolve(caller: &Caller, user: UserRef, action: Action) -> Result<UserId, ApiError> {
    match (caller, user) {
        (Caller::Server, UserRef::Me) => Err(ApiError::CannotGetOwnUserWithoutUser),
        (Caller::Server, UserRef::Id(id)) => Ok(id),
        (Caller::Client(sub), UserRef::Me) => Ok(sub.clone()),
        (Caller::Client(sub), UserRef::Id(id)) if *sub == id => Ok(id),
        (Caller::Client(_), UserRef::Id(_)) => Err(ApiError::Forbidden(action)),
    }
}

fn parse_user(raw: &str, field: &str) -> Result<UserRef, ApiError> {
    decode_segment(raw)
        .and_then(|s| UserRef::parse(&s).ok())
        .ok_or_else(|| {
            ApiError::schema(format!(
                "Field '{field}' must be 1-128 characters from A-Z a-z 0-9 . _ - : | @, or 'me'."
            ))
        })
}

fn parse_email(raw: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(raw)
        .map_err(|e| ApiError::schema(format!("Field 'value' is invalid: {e}.")))
}

fn check_type(raw: Option<&str>) -> Result<(), ApiError> {
    match raw {
        None | Some("email") => Ok(()),
        Some(_) => Err(ApiError::schema("Field 'type' must be \"email\".")),
    }
}

/// The path's channel id; a malformed one is simply a channel that does not exist.
fn parse_channel(raw: &str) -> Option<ChannelId> {
    decode_segment(raw).and_then(|s| ChannelId::parse(&s).ok())
}

impl App {
    pub fn new(
        config: Config,
        store: Arc<dyn ChannelStore>,
        mailer: Arc<dyn Mailer>,
        routes: &'static [Route],
        key_set: Option<Arc<dyn KeySetSource>>,
    ) -> Self {
        let auth = Authenticator::new(&config.jwt, config.server_key_digests.clone(), key_set);
        let hasher = Hasher::new(config.verification_secret.clone());
        App {
            config,
            auth,
            hasher,
            store,
            mailer,
            routes,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// Handles one request. Never fails: every error is a JSON response.
    pub async fn handle(&self, request: ::http::Request<Bytes>) -> Response {
        let started = Instant::now();
        let method = request.method().clone();
        let (route, response) = match self.dispatch(&request).await {
            Ok((route, response)) => (Some(route), response),
            Err((route, error)) => (route, error.into_response()),
        };
        tracing::info!(
            method = %method,
            route = route.map_or("-", Route::name),
            status = response.status().as_u16(),
            millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "request"
        );
        response
    }

    async fn dispatch(
        &self,
        request: &::http::Request<Bytes>,
    ) -> Result<(Route, Response), (Option<Route>, ApiError)> {
        if request.body().len() > MAX_BODY_BYTES {
            return Err((None, ApiError::PayloadTooLarge));
        }
        let path = request.uri().path();
        let matched = crate::http::route(request.method(), path).map_err(|e| (None, e))?;
        let route = matched.route;
        if !self.routes.contains(&route) {
            return Err((None, ApiError::RouteNotFound));
        }
        let body = request.body().as_ref();
        let query = request.uri().query();
        let result = match route {
            Route::VerifyLink => self.verify_link(body, true).await,
            Route::CheckLink => self.verify_link(body, false).await,
            _ => {
                let caller = self
                    .auth
                    .authenticate(request.headers())
                    .await
                    .map_err(|e| (Some(route), e))?;
                match route {
                    Route::Create => self.create(&caller, body).await,
                    Route::List => self.list(&caller, query).await,
                    Route::Read => self.read(&caller, matched.user, matched.channel).await,
                    Route::Update => {
                        self.update(&caller, matched.user, matched.channel, body)
                            .await
                    }
                    Route::Delete => {
                        self.delete(&caller, matched.user, matched.channel, body)
                            .await
                    }
                    Route::SendVerification => {
                        self.send(&caller, matched.user, matched.channel, body)
                            .await
                    }
                    Route::AttemptVerification => {
                        self.attempt(&caller, matched.user, matched.channel, body)
                            .await
                    }
                    Route::VerifyLink | Route::CheckLink => Err(ApiError::RouteNotFound),
                }
            }
        };
        result.map(|r| (route, r)).map_err(|e| (Some(route), e))
    }

    fn channel_json(&self, channel: &StoredChannel, now: i64) -> serde_json::Value {
        channel.to_json(now, self.limits().max_code_attempts)
    }

    fn ok(&self, status: StatusCode, channel: &StoredChannel) -> Response {
        json_response(status, &self.channel_json(channel, now_millis()))
    }

    async fn create(&self, caller: &Caller, body: &[u8]) -> Result<Response, ApiError> {
        let f = Fields::parse(
            body,
            &[
                "user_id",
                "type",
                "value",
                "used_for_auth",
                "is_primary",
                "is_verified",
            ],
        )?;
        let user = parse_user(f.req_str("user_id")?, "user_id")?;
        check_type(Some(f.req_str("type")?))?;
        let value = parse_email(f.req_str("value")?)?;
        let used_for_auth = f.req_bool("used_for_auth")?;
        let is_primary = f.opt_bool("is_primary")?.unwrap_or(false);
        let is_verified = f.opt_bool("is_verified")?;
        let user = resolve(caller, user, Action::Create)?;
        if is_verified.is_some() && *caller != Caller::Server {
            return Err(ApiError::ServerOnlyField);
        }
        let record = ChannelRecord {
            id: ChannelId::new_random(),
            user_id: user,
            value,
            used_for_auth,
            is_verified: is_verified.unwrap_or(false),
            created_at_millis: now_millis(),
            verification: None,
            last_sent_at_millis: None,
            version: 0,
        };
        let record = &record;
        retrying(|| async move {
            let change = Change::Create {
                record: record.clone(),
                make_primary: is_primary,
                max_channels: self.limits().max_channels_per_user,
            };
            // A create conditions on claims only; it is stale only when it collided with a
            // concurrent transaction on the same items, and then trying again is right.
            let stored = settled(self.store.apply(change).await)?;
            Ok(stored.map(|s| self.ok(StatusCode::CREATED, &s)))
        })
        .await
    }

    async fn list(&self, caller: &Caller, query: Option<&str>) -> Result<Response, ApiError> {
        let user = query_param(query, "user_id")
            .ok_or_else(|| ApiError::schema("Query parameter 'user_id' is required."))?;
        let user = UserRef::parse(&user).map_err(|_| {
            ApiError::schema("Query parameter 'user_id' must be 1-128 characters from A-Z a-z 0-9 . _ - : | @, or 'me'.")
        })?;
        let wanted = query_param(query, "contact_channel_id");
        let user = resolve(caller, user, Action::List)?;
        let mut channels = match wanted {
            None => self.store.list(&user).await?,
            Some(raw) => match ChannelId::parse(&raw) {
                Ok(id) => self.store.get(&user, id).await?.into_iter().collect(),
                Err(_) => Vec::new(),
            },
        };
        channels.sort_by(|a, b| {
            (a.record.created_at_millis, a.record.id)
                .cmp(&(b.record.created_at_millis, b.record.id))
        });
        let now = now_millis();
        let items: Vec<_> = channels.iter().map(|c| self.channel_json(c, now)).collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({ "items": items, "is_paginated": false }),
        ))
    }

    async fn read(&self, caller: &Caller, user: &str, channel: &str) -> Result<Response, ApiError> {
        let user = resolve(caller, parse_user(user, "user_id")?, Action::Read)?;
        let stored = self.find(&user, channel).await?;
        Ok(self.ok(StatusCode::OK, &stored))
    }

    async fn find(&self, user: &UserId, channel: &str) -> Result<StoredChannel, ApiError> {
        let id = parse_channel(channel).ok_or(ApiError::ChannelNotFound)?;
        self.store
            .get(user, id)
            .await?
            .ok_or(ApiError::ChannelNotFound)
    }

    async fn update(
        &self,
        caller: &Caller,
        user: &str,
        channel: &str,
        body: &[u8],
    ) -> Result<Response, ApiError> {
        let user = parse_user(user, "user_id")?;
        let f = Fields::parse(
            body,
            &[
                "value",
                "type",
                "used_for_auth",
                "is_primary",
                "is_verified",
            ],
        )?;
        check_type(f.opt_str("type")?)?;
        let value = f.opt_str("value")?.map(parse_email).transpose()?;
        let used_for_auth = f.opt_bool("used_for_auth")?;
        let is_primary = f.opt_bool("is_primary")?;
        let is_verified = f.opt_bool("is_verified")?;
        let user = resolve(caller, user, Action::Update)?;
        if is_verified.is_some() && *caller != Caller::Server {
            return Err(ApiError::ServerOnlyField);
        }
        let (user, value) = (&user, &value);
        retrying(|| async move {
            let current = self.find(user, channel).await?;
            let before = current.record.clone();
            let mut after = before.clone();
            if let Some(value) = value.as_ref().filter(|v| **v != before.value) {
                // Invariant 5: a new address is unproven, and codes sent to the old one die.
                after.value = value.clone();
                after.is_verified = false;
                after.verification = None;
                after.last_sent_at_millis = None;
            }
            if let Some(auth) = used_for_auth {
                after.used_for_auth = auth;
            }
            match is_verified {
                Some(true) if !after.is_verified => {
                    after.is_verified = true;
                    // An outstanding code or link is used up by the server's verification.
                    after.verification = None;
                }
                Some(false) if after.is_verified => {
                    after.is_verified = false;
                    after.verification = None;
                }
                _ => {}
            }
            let primary = match is_primary {
                Some(true) if !current.is_primary => PrimaryChange::Set,
                Some(false) if current.is_primary => PrimaryChange::Clear,
                _ => PrimaryChange::Keep,
            };
            if after == before && primary == PrimaryChange::Keep {
                return Ok(Some(self.ok(StatusCode::OK, &current)));
            }
            let change = Change::Update {
                before,
                after,
                primary,
                was_primary: current.is_primary,
                send_log: None,
            };
            let stored = settled(self.store.apply(change).await)?;
            Ok(stored.map(|s| self.ok(StatusCode::OK, &s)))
        })
        .await
    }

    async fn delete(
        &self,
        caller: &Caller,
        user: &str,
        channel: &str,
        body: &[u8],
    ) -> Result<Response, ApiError> {
        let user = parse_user(user, "user_id")?;
        Fields::parse(body, &[])?;
        let user = &resolve(caller, user, Action::Delete)?;
        retrying(|| async move {
            let current = self.find(user, channel).await?;
            let change = Change::Delete {
                before: current.record,
                was_primary: current.is_primary,
            };
            match self.store.apply(change).await {
                Ok(_) => Ok(Some(json_response(
                    StatusCode::OK,
                    &json!({ "success": true }),
                ))),
                Err(WriteError::Stale) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn send(
        &self,
        caller: &Caller,
        user: &str,
        channel: &str,
        body: &[u8],
    ) -> Result<Response, ApiError> {
        let user = parse_user(user, "user_id")?;
        let f = Fields::parse(body, &["strategy", "callback_url"])?;
        let strategy = match f.opt_str("strategy")? {
            None => Strategy::EmailLink,
            Some(s) => Strategy::parse(s).ok_or_else(|| {
                ApiError::schema("Field 'strategy' must be \"email_link\" or \"email_code\".")
            })?,
        };
        let callback = f.opt_str("callback_url")?;
        if strategy == Strategy::EmailLink && callback.is_none() {
            return Err(ApiError::schema(
                "Field 'callback_url' is required for the email_link strategy.",
            ));
        }
        // Shape first (a schema error); the allow-list comes later, in the endpoint's order.
        let callback_check =
            callback.map(|raw| check_callback(raw, &self.config.allowed_callback_urls));
        if let Some(Err(CallbackError::NotHttpUrl)) = callback_check {
            return Err(ApiError::schema(
                "Field 'callback_url' must be an absolute http or https URL.",
            ));
        }
        let user = resolve(caller, user, Action::Verify)?;
        let (limits, user, callback_check) = (self.limits(), &user, &callback_check);
        let step = retrying(|| async move {
            let current = self.find(user, channel).await?;
            let before = current.record.clone();
            if before.is_verified {
                return Err(ApiError::EmailAlreadyVerified);
            }
            let callback = match callback_check {
                Some(Ok(url)) => Some(url),
                Some(Err(_)) => return Err(ApiError::RedirectUrlNotWhitelisted),
                None => None,
            };
            let now = now_millis();
            let cooldown_ms = i64::try_from(limits.send_cooldown_seconds.saturating_mul(1000))
                .unwrap_or(i64::MAX);
            let cooling = before
                .last_sent_at_millis
                .filter(|last| now < last.saturating_add(cooldown_ms));
            if let Some(last) = cooling {
                let cooldown_wait = ceil_seconds(last + cooldown_ms - now);
                // Both limits may apply: answer the longer wait.
                let log = self.store.send_log(&before.value).await?;
                let daily = daily_wait(&log, now, limits.max_sends_per_day).unwrap_or(0);
                return Err(ApiError::RateLimited(cooldown_wait.max(daily)));
            }

            let ttl = match strategy {
                Strategy::EmailLink => limits.link_ttl_seconds,
                Strategy::EmailCode => limits.code_ttl_seconds,
            };
            let expires_at_millis =
                now.saturating_add(i64::try_from(ttl.saturating_mul(1000)).unwrap_or(i64::MAX));
            let (digest, mail) = match (strategy, callback) {
                (Strategy::EmailLink, Some(url)) => {
                    let token = generate_link_token().map_err(|_| ApiError::Internal)?;
                    let link = link_with_code(url, &token);
                    let mail = compose(
                        &self.config.app_name,
                        &before.value,
                        &MailKind::Link { url: &link },
                        ttl,
                    );
                    (self.hasher.link(&token), mail)
                }
                (Strategy::EmailLink, None) => return Err(ApiError::Internal),
                (Strategy::EmailCode, page) => {
                    let code = VerificationCode::generate().map_err(|_| ApiError::Internal)?;
                    let page = page.map(url::Url::as_str);
                    let kind = MailKind::Code {
                        code: code.expose(),
                        page,
                    };
                    let mail = compose(&self.config.app_name, &before.value, &kind, ttl);
                    (self.hasher.code(before.id, &code), mail)
                }
            };
            let mut after = before.clone();
            after.verification = Some(Verification {
                strategy,
                digest,
                expires_at_millis,
                attempts: 0,
                used: false,
            });
            after.last_sent_at_millis = Some(now);
            let admit = SendLogChange::Admit {
                address: before.value.clone(),
                at: now,
                cap: limits.max_sends_per_day,
            };
            let change = Change::Update {
                before: before.clone(),
                after,
                primary: PrimaryChange::Keep,
                was_primary: current.is_primary,
                send_log: Some(admit),
            };
            // The new code is stored before the mail goes out, so that a send needs no third
            // write on success; if the mail service refuses, the previous state is put back.
            let stored = settled(self.store.apply(change).await)?;
            Ok(stored.map(|s| (before, s.record, mail, now, expires_at_millis)))
        });
        let (before, sent, mail, now, expires_at_millis) = step.await?;
        if let Err(e) = self.mailer.send(&mail).await {
            tracing::warn!(error = %e, "verification mail refused by the mail service");
            self.roll_back_send(&before, &sent, now).await;
            return Err(ApiError::EmailDeliveryFailed);
        }
        let body = json!({ "success": true, "strategy": strategy.as_str(), "expires_at_millis": expires_at_millis });
        Ok(json_response(StatusCode::OK, &body))
    }

    /// Puts back the verification state from before a send whose mail was refused, and takes
    /// the send out of the cooldown and the daily cap. Leaves alone whatever a later request did.
    async fn roll_back_send(&self, previous: &ChannelRecord, sent: &ChannelRecord, at: i64) {
        let ours = &|r: &ChannelRecord| match (&r.verification, &sent.verification) {
            (Some(a), Some(b)) => a.digest.matches(&b.digest),
            _ => false,
        };
        let rolled_back = retrying(|| async move {
            let Some(current) = self.store.get(&sent.user_id, sent.id).await? else {
                return Ok(Some(()));
            };
            let (current, was_primary) = (current.record, current.is_primary);
            let mut after = current.clone();
            if ours(&current) {
                after.verification = if current.value == previous.value && !current.is_verified {
                    previous.verification.clone()
                } else {
                    None
                };
            }
            if current.last_sent_at_millis == Some(at) {
                after.last_sent_at_millis = previous.last_sent_at_millis;
            }
            let release = SendLogChange::Release {
                address: sent.value.clone(),
                at,
            };
            let change = Change::Update {
                before: current,
                after,
                primary: PrimaryChange::Keep,
                was_primary,
                send_log: Some(release),
            };
            match self.store.apply(change).await {
                Ok(_) => Ok(Some(())),
                Err(WriteError::Stale) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await;
        if rolled_back.is_err() {
            tracing::error!("could not roll back a refused send");
        }
    }

    async fn attempt(
        &self,
        caller: &Caller,
        user: &str,
        channel: &str,
        body: &[u8],
    ) -> Result<Response, ApiError> {
        let user = parse_user(user, "user_id")?;
        let f = Fields::parse(body, &["code"])?;
        let code = VerificationCode::parse(f.req_str("code")?)
            .ok_or_else(|| ApiError::schema("Field 'code' must be exactly six digits."))?;
        let user = resolve(caller, user, Action::Verify)?;
        let max = self.limits().max_code_attempts;
        let (user, code) = (&user, &code);
        retrying(|| async move {
            let current = self.find(user, channel).await?;
            let before = current.record.clone();
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
            if now_millis() >= v.expires_at_millis {
                return Err(ApiError::VerificationCodeExpired);
            }
            let right = v.digest.matches(&self.hasher.code(before.id, code));
            let mut after = before.clone();
            let outcome = if right {
                after = model::redeemed(&before);
                Ok(())
            } else {
                let attempts = v.attempts + 1;
                if let Some(v) = after.verification.as_mut() {
                    v.attempts = attempts;
                }
                if attempts >= max {
                    Err(ApiError::VerificationCodeMaxAttemptsReached)
                } else {
                    Err(ApiError::VerificationCodeIncorrect {
                        attempts_remaining: max - attempts,
                    })
                }
            };
            // The guess counts only if it is written against the version it was checked on:
            // concurrent guesses serialize here, so no interleaving gets more than `max`.
            let change = Change::Update {
                before,
                after,
                primary: PrimaryChange::Keep,
                was_primary: current.is_primary,
                send_log: None,
            };
            match settled(self.store.apply(change).await)? {
                Some(stored) => outcome.map(|()| Some(self.ok(StatusCode::OK, &stored))),
                None => Ok(None),
            }
        })
        .await
    }

    async fn verify_link(&self, body: &[u8], redeem: bool) -> Result<Response, ApiError> {
        let f = Fields::parse(body, &["code"])?;
        let token = f.req_str("code")?;
        let digest = self.hasher.link(token);
        let now = now_millis();
        if redeem {
            match self.store.redeem_link(&digest, now).await {
                Ok(_) => Ok(json_response(StatusCode::OK, &json!({ "success": true }))),
                Err(RedeemError::Refused(r)) => Err(r.into()),
                Err(RedeemError::Store(e)) => Err(e.into()),
            }
        } else {
            let record = match self.store.find_link(&digest).await? {
                Some((user, id)) => self.store.get(&user, id).await?.map(|s| s.record),
                None => None,
            };
            check_link(record.as_ref(), &digest, now)?;
            Ok(json_response(
                StatusCode::OK,
                &json!({ "is_code_valid": true }),
            ))
        }
    }

    /// For the local server's own routes: is this method/path one of the API's?
    pub fn is_api_path(method: &Method, path: &str) -> bool {
        !matches!(
            crate::http::route(method, path),
            Err(ApiError::RouteNotFound)
        )
    }
}
