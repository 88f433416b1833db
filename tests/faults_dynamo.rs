//! DynamoDB fault injection through the real SDK, on moto: for every operation of the service
//! and every DynamoDB operation k it makes, each fault of `support::faults::KINDS` (throttling
//! or 500 before the request, once or on every SDK attempt; a dropped connection before; a
//! dropped or never-sent answer after moto applied it). After each faulted call:
//!
//! 1. the caller got `Ok`, a 500/502/503, or the answer the contract gives a retried request
//!    (docs/security.md) — never a panic or a hang (every call is bounded);
//! 2. the whole table (test-only Scan) satisfies docs/api.md §4 (`support::invariants::check`);
//! 3. the state is the one before the call or the one a fault-free call leaves (atomicity);
//! 4. the same request repeated without faults converges to the fault-free state.
//!
//! DynamoDB keeps a TransactWriteItems retry with the same `ClientRequestToken` idempotent; moto
//! does not, so the proxy emulates it (`FaultProxy::emulate_idempotency`). One more test runs the
//! lost-answer faults without that emulation, the worst case, where only 1, 2 and 4 must hold.

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::retry::RetryPartition;
use cc_aws::dynamo::DynamoStore;
use cc_tests::faults::{Dialect, Fault, FaultProxy, KINDS, Times, retry_config, timeout_config};
use cc_tests::invariants::{Normalized, check, normalize, scan};
use cc_tests::moto::moto;
use cc_tests::{link_token, six_digits};
use contact_channels::Service;
use contact_channels::auth::Caller;
use contact_channels::domain::callback::CallbackUrl;
use contact_channels::domain::secret::VerificationCode;
use contact_channels::domain::{ChannelId, EmailAddress, UserId, UserRef};
use contact_channels::error::ApiError;
use contact_channels::mail::RecordingMailer;
use contact_channels::service::{ChannelRef, CreateChannel, SendVerification, UpdateChannel};

const MAX_ATTEMPTS: i64 = 5;
/// Every service call is bounded: a hang is a failure, not a stuck suite.
const CALL_LIMIT: Duration = Duration::from_secs(30);

/// The SDK client the service uses: through the proxy, with production's retry mode (standard,
/// 3 attempts) and timeouts scaled down so that a never-sent answer costs one second, its own
/// retry partition (the token bucket is per partition; the suite spends many retries).
async fn proxied_client(proxy: &FaultProxy, name: &str) -> aws_sdk_dynamodb::Client {
    let sdk = moto().sdk_config().await;
    let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .endpoint_url(&proxy.endpoint)
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .retry_partition(RetryPartition::new(name.to_owned()))
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    CreatePrimary,
    UpdatePrimaryMove,
    UpdateValue,
    Delete,
    SendCode,
    SendLink,
    SendRefused,
    AttemptCorrect,
    AttemptWrong,
    VerifyLink,
}

struct Rig {
    proxy: FaultProxy,
    direct: aws_sdk_dynamodb::Client,
    table: String,
    service: Service<DynamoStore>,
    mailer: Arc<RecordingMailer>,
}

/// What the setup left for the operation to act on.
#[derive(Default, Clone)]
struct Ctx {
    ids: Vec<ChannelId>,
    code: Option<String>,
    token: Option<String>,
}

fn user() -> UserId {
    UserId::parse("alice").unwrap()
}

fn email(v: &str) -> EmailAddress {
    EmailAddress::parse(v).unwrap()
}

fn at(id: ChannelId) -> ChannelRef {
    ChannelRef {
        user: UserRef::Id(user()),
        channel: Some(id),
    }
}

fn link() -> SendVerification {
    SendVerification::Link {
        callback: CallbackUrl::parse("https://app.example.com/verify").unwrap(),
    }
}

fn code() -> SendVerification {
    SendVerification::Code { page: None }
}

async fn rig(proxy: &FaultProxy, name: &str) -> Rig {
    let moto = moto();
    let table = moto.new_table().await;
    let direct = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let store = Arc::new(DynamoStore::new(proxied_client(proxy, name).await, &table));
    let vars = [
        ("SEND_COOLDOWN_SECONDS", "0"),
        ("MAX_SENDS_PER_DAY", "1000"),
        ("ALLOWED_CALLBACK_URLS", "https://app.example.com"),
    ];
    let config = cc_tests::local_config(&vars);
    let mailer = Arc::new(RecordingMailer::default());
    let service = Service::new(config, store).with_mailer(mailer.clone());
    Rig {
        proxy: proxy.clone(),
        direct,
        table,
        service,
        mailer,
    }
}

impl Rig {
    async fn create(&self, value: &str, auth: bool, primary: bool) -> Result<ChannelId, ApiError> {
        let command = CreateChannel {
            user: UserRef::Id(user()),
            value: email(value),
            used_for_auth: auth,
            is_primary: primary,
            is_verified: None,
        };
        Ok(self
            .service
            .create(&Caller::Server, command)
            .await?
            .record
            .id)
    }

    async fn send(&self, id: ChannelId, how: SendVerification) -> Result<(), ApiError> {
        self.service
            .send_verification(&Caller::Server, at(id), how)
            .await
            .map(|_| ())
    }

    async fn update(&self, id: ChannelId, command: UpdateChannel) -> Result<(), ApiError> {
        self.service
            .update(&Caller::Server, at(id), command)
            .await
            .map(|_| ())
    }

    async fn state(&self) -> (Vec<String>, Normalized) {
        let items = scan(&self.direct, &self.table).await;
        (check(&items, MAX_ATTEMPTS), normalize(&items))
    }

    /// Brings the table into the state the operation starts from (no faults armed).
    async fn setup(&self, op: Op) -> Ctx {
        let mut ctx = Ctx::default();
        match op {
            Op::Create => {}
            Op::CreatePrimary => {
                ctx.ids
                    .push(self.create("b@example.com", true, true).await.unwrap());
            }
            Op::UpdatePrimaryMove => {
                ctx.ids
                    .push(self.create("a@example.com", true, true).await.unwrap());
                ctx.ids
                    .push(self.create("b@example.com", false, false).await.unwrap());
            }
            Op::UpdateValue | Op::Delete | Op::SendLink | Op::VerifyLink => {
                let id = self.create("a@example.com", true, true).await.unwrap();
                self.send(id, link()).await.unwrap();
                ctx.token = link_token(&self.mailer.last_text());
                ctx.ids.push(id);
            }
            Op::SendCode | Op::SendRefused | Op::AttemptCorrect | Op::AttemptWrong => {
                let id = self.create("a@example.com", true, true).await.unwrap();
                self.send(id, code()).await.unwrap();
                ctx.code = six_digits(&self.mailer.last_text());
                ctx.ids.push(id);
            }
        }
        if op == Op::SendRefused {
            self.mailer.set_refusing(true);
        }
        ctx
    }

    /// The operation under test.
    async fn run(&self, op: Op, ctx: &Ctx) -> Result<(), ApiError> {
        let id = || ctx.ids[0];
        let call = async {
            match op {
                Op::Create => self.create("a@example.com", true, false).await.map(|_| ()),
                Op::CreatePrimary => self.create("a@example.com", true, true).await.map(|_| ()),
                Op::UpdatePrimaryMove => {
                    let command = UpdateChannel {
                        is_primary: Some(true),
                        ..UpdateChannel::default()
                    };
                    self.update(ctx.ids[1], command).await
                }
                Op::UpdateValue => {
                    let command = UpdateChannel {
                        value: Some(email("c@example.com")),
                        ..UpdateChannel::default()
                    };
                    self.update(id(), command).await
                }
                Op::Delete => self.service.delete(&Caller::Server, at(id())).await,
                Op::SendCode | Op::SendRefused => self.send(id(), code()).await,
                Op::SendLink => self.send(id(), link()).await,
                Op::AttemptCorrect | Op::AttemptWrong => {
                    let right = ctx.code.clone().unwrap();
                    let guess = if op == Op::AttemptCorrect {
                        right
                    } else if right == "000000" {
                        "111111".to_owned()
                    } else {
                        "000000".to_owned()
                    };
                    let guess = VerificationCode::parse(&guess).unwrap();
                    self.service
                        .attempt(&Caller::Server, at(id()), guess)
                        .await
                        .map(|_| ())
                }
                Op::VerifyLink => self.service.verify_link(ctx.token.as_ref().unwrap()).await,
            }
        };
        match tokio::time::timeout(CALL_LIMIT, call).await {
            Ok(result) => result,
            Err(_) => panic!("{op:?} did not answer within {CALL_LIMIT:?}"),
        }
    }
}

/// The answers a request may get when an earlier attempt of it was applied and its answer lost
/// (docs/security.md, "Idempotent retries by clients"); on a repeat, and in the worst case
/// (SDK retries without idempotency) on the faulted call itself.
fn retried_answer(op: Op, e: &ApiError) -> bool {
    match (op, e) {
        (Op::Create | Op::CreatePrimary, ApiError::ChannelAlreadyExists(Some(_))) => true,
        // Only without idempotency tokens: the SDK's retry of the applied value change finds
        // the new value claimed (by this very channel).
        (Op::UpdateValue, ApiError::ChannelAlreadyExists(Some(_))) => true,
        (Op::Delete, ApiError::ChannelNotFound) => true,
        (Op::AttemptCorrect, ApiError::EmailAlreadyVerified) => true,
        (Op::AttemptWrong, ApiError::VerificationCodeIncorrect { .. }) => true,
        (Op::VerifyLink, ApiError::VerificationCodeAlreadyUsed) => true,
        _ => false,
    }
}

/// What the operation answers without faults.
fn expected_ok(op: Op, result: &Result<(), ApiError>) -> bool {
    match (op, result) {
        (Op::SendRefused, Err(ApiError::EmailDeliveryFailed)) => true,
        (Op::SendRefused, _) => false,
        (Op::AttemptWrong, Err(ApiError::VerificationCodeIncorrect { .. })) => true,
        (Op::AttemptWrong, _) => false,
        (_, r) => r.is_ok(),
    }
}

/// A contract error for an infrastructure failure: 500/502/503 JSON.
fn infrastructure(e: &ApiError) -> bool {
    matches!(e.status().as_u16(), 500 | 502 | 503)
}

const ALL_OPS: &[Op] = &[
    Op::Create,
    Op::CreatePrimary,
    Op::UpdatePrimaryMove,
    Op::UpdateValue,
    Op::Delete,
    Op::SendCode,
    Op::SendLink,
    Op::SendRefused,
    Op::AttemptCorrect,
    Op::AttemptWrong,
    Op::VerifyLink,
];

/// One row of the results: what the faulted calls answered.
#[derive(Default, Debug)]
struct Tally {
    cases: usize,
    ok: usize,
    infra: usize,
    retried: usize,
    fired: usize,
    /// Faulted calls that left a state other than before or after (allowed: a 500 of a
    /// refused send; and without idempotency tokens, a wrong guess counted twice).
    neither: usize,
}

/// Runs every (k, fault) of `kinds` on `op`; returns the tally. `strict`: idempotency emulated,
/// the faulted call must leave the state before or after (atomic) and answer without the
/// retried-request answers.
async fn sweep(op: Op, kinds: &[(Fault, Times)], strict: bool) -> Tally {
    let proxy = FaultProxy::start(&moto().endpoint, Dialect::DynamoDb).await;
    proxy.emulate_idempotency(strict);
    let name = format!("{op:?}-{strict}");
    // The fault-free run: the reference state, and how many DynamoDB operations the call makes.
    let reference = rig(&proxy, &name).await;
    let ctx = reference.setup(op).await;
    let (violations, before) = reference.state().await;
    assert!(violations.is_empty(), "{op:?} setup: {violations:?}");
    proxy.count();
    let result = reference.run(op, &ctx).await;
    let n = proxy.operations();
    assert!(
        expected_ok(op, &result),
        "{op:?} without faults: {result:?}"
    );
    let (violations, after) = reference.state().await;
    assert!(
        violations.is_empty(),
        "{op:?} without faults: {violations:?}"
    );
    assert!(n >= 1, "{op:?} made no DynamoDB request");

    let mut tally = Tally::default();
    for k in 1..=n {
        for &(fault, times) in kinds {
            let case = format!("{op:?} k={k}/{n} {fault:?} {times:?} strict={strict}");
            let rig = rig(&proxy, &name).await;
            let ctx = rig.setup(op).await;
            rig.proxy.arm(k, fault, times);
            let result = rig.run(op, &ctx).await;
            tally.fired += rig.proxy.disarm();
            rig.mailer.set_refusing(false);
            tally.cases += 1;
            match &result {
                r if expected_ok(op, r) => tally.ok += 1,
                Err(e) if infrastructure(e) => {
                    // A store failure is a 500 here; a refused send's 502 is its expected answer.
                    assert_eq!(e, &ApiError::Internal, "{case}");
                    tally.infra += 1;
                }
                Err(e) if retried_answer(op, e) && !strict => tally.retried += 1,
                other => panic!("{case}: answered {other:?}"),
            }
            let (violations, mid) = rig.state().await;
            assert!(violations.is_empty(), "{case}: {violations:?}");
            if mid.channels != before.channels && mid.channels != after.channels {
                tally.neither += 1;
            }
            if strict {
                let channels_ok = mid.channels == before.channels || mid.channels == after.channels;
                // A refused send answered 500 may keep the stored code (docs/security.md).
                let half_send = op == Op::SendRefused && matches!(result, Err(ApiError::Internal));
                assert!(
                    channels_ok || half_send,
                    "{case}: state is neither before nor after:\n{mid:?}\nbefore {before:?}\nafter {after:?}"
                );
                if op == Op::SendRefused && result == Err(ApiError::EmailDeliveryFailed) {
                    assert_eq!(mid, before, "{case}: a 502 must leave everything as before");
                }
            }
            // The same request again, without faults, converges to the fault-free state.
            if op == Op::SendRefused {
                rig.mailer.set_refusing(true);
            }
            let again = rig.run(op, &ctx).await;
            assert!(
                expected_ok(op, &again) || again.as_ref().is_err_and(|e| retried_answer(op, e)),
                "{case}: the repeat answered {again:?}"
            );
            let (violations, end) = rig.state().await;
            assert!(violations.is_empty(), "{case}, repeated: {violations:?}");
            let mut want = after.channels.clone();
            if op == Op::AttemptWrong {
                // The repeat of a wrong guess is another guess (docs/security.md).
                want = mid.channels.clone();
                for v in want.values_mut() {
                    if let Some(ver) = v.3.as_mut() {
                        ver.1 += 1;
                    }
                }
            }
            assert_eq!(end.channels, want, "{case}: the repeat did not converge");
        }
    }
    eprintln!(
        "RESULT {op:?} strict={strict}: {n} DynamoDB operations × {} faults = {} cases; \
         answered ok {}, 500 {}, retried-request answer {}; fault hit {} attempts; \
         idempotent replays {}; state neither before nor after {}",
        kinds.len(),
        tally.cases,
        tally.ok,
        tally.infra,
        tally.retried,
        tally.fired,
        proxy.replayed(),
        tally.neither
    );
    tally
}

macro_rules! sweep_tests {
    ($($name:ident: $op:expr,)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let started = Instant::now();
            let tally = sweep($op, KINDS, true).await;
            assert!(tally.fired >= tally.cases, "every case injected a fault: {tally:?}");
            eprintln!("{:?} took {:?}", $op, started.elapsed());
        }
    )*};
}

sweep_tests! {
    every_fault_in_create_leaves_the_table_consistent: Op::Create,
    every_fault_in_create_as_primary_leaves_the_table_consistent: Op::CreatePrimary,
    every_fault_in_a_primary_move_leaves_the_table_consistent: Op::UpdatePrimaryMove,
    every_fault_in_a_value_change_leaves_the_table_consistent: Op::UpdateValue,
    every_fault_in_delete_leaves_the_table_consistent: Op::Delete,
    every_fault_in_sending_a_code_leaves_the_table_consistent: Op::SendCode,
    every_fault_in_sending_a_link_leaves_the_table_consistent: Op::SendLink,
    every_fault_in_a_refused_send_and_its_rollback_leaves_the_table_consistent: Op::SendRefused,
    every_fault_in_a_right_guess_leaves_the_table_consistent: Op::AttemptCorrect,
    every_fault_in_a_wrong_guess_leaves_the_table_consistent: Op::AttemptWrong,
    every_fault_in_a_link_redemption_leaves_the_table_consistent: Op::VerifyLink,
}

/// Without DynamoDB's idempotency token (moto as it is), an SDK retry of an applied transaction
/// runs again: the table must stay consistent and a repeat converge all the same; the faulted
/// call may answer what a client's retry gets (docs/security.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_without_idempotency_tokens_leave_the_table_consistent() {
    let kinds = [(Fault::DropAfter, Times::Once)];
    for &op in ALL_OPS {
        sweep(op, &kinds, false).await;
    }
}

/// The checker can fail: a consistent table passes, and each hand-made corruption of it (the
/// kinds of damage a half-applied change would leave) is reported.
#[tokio::test]
async fn the_checker_reports_every_kind_of_corruption() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let proxy = FaultProxy::start(&moto().endpoint, Dialect::DynamoDb).await;
    let rig = rig(&proxy, "checker").await;
    let a = rig.create("a@example.com", true, true).await.unwrap();
    rig.create("b@example.com", false, false).await.unwrap();
    rig.send(a, link()).await.unwrap();
    let items = scan(&rig.direct, &rig.table).await;
    assert_eq!(check(&items, MAX_ATTEMPTS), Vec::<String>::new());

    let pk = |item: &cc_tests::invariants::Item| item["pk"].as_s().unwrap().clone();
    let without = |prefix: &str| -> Vec<_> {
        items
            .iter()
            .filter(|i| !pk(i).starts_with(prefix))
            .cloned()
            .collect()
    };
    let edited = |prefix: &str, sk: &str, name: &str, value: Option<AttributeValue>| -> Vec<_> {
        let mut out = items.clone();
        // Channel edits go to channel a (primary, used for auth, with a link).
        let item = out
            .iter_mut()
            .find(|i| {
                pk(i).starts_with(prefix)
                    && i["sk"].as_s().unwrap().starts_with(sk)
                    && (sk != "CH#" || i["id"].as_s().unwrap() == &a.to_string())
            })
            .unwrap();
        match value {
            Some(v) => item.insert(name.to_owned(), v),
            None => item.remove(name),
        };
        out
    };
    let s = |v: &str| Some(AttributeValue::S(v.to_owned()));
    let orphan = |prefix: &str| {
        let mut out = items.clone();
        let mut copy = items
            .iter()
            .find(|i| pk(i).starts_with(prefix))
            .unwrap()
            .clone();
        let renamed = match prefix {
            "VALUE#" => "VALUE#alice#zz@example.com".to_owned(),
            _ => format!("{prefix}00{}", &pk(&copy)[prefix.len() + 2..]),
        };
        copy.insert("pk".into(), AttributeValue::S(renamed));
        out.push(copy);
        out
    };
    let cases: Vec<(&str, Vec<_>, &str)> = vec![
        ("value claim lost", without("VALUE#"), "has no value claim"),
        (
            "auth claim lost",
            without("AUTH#"),
            "does not hold the auth claim",
        ),
        ("link index lost", without("LINK#"), "is not indexed"),
        (
            "meta lost",
            without("USER#alice")
                .into_iter()
                .chain(
                    items
                        .iter()
                        .filter(|i| pk(i).starts_with("USER#") && i["sk"].as_s().unwrap() != "META")
                        .cloned(),
                )
                .collect(),
            "meta count None",
        ),
        (
            "count off",
            edited(
                "USER#",
                "META",
                "count",
                Some(AttributeValue::N("3".into())),
            ),
            "meta count Some(3)",
        ),
        (
            "primary dangling",
            edited(
                "USER#",
                "META",
                "primary",
                s("00000000-0000-4000-8000-000000000000"),
            ),
            "is no channel",
        ),
        (
            "primary flag dropped",
            edited(
                "USER#",
                "CH#",
                "is_primary",
                Some(AttributeValue::Bool(false)),
            ),
            "has is_primary false, the meta's primary is Some",
        ),
        (
            "auth flag dropped",
            edited(
                "USER#",
                "CH#",
                "used_for_auth",
                Some(AttributeValue::Bool(false)),
            ),
            "orphan auth claim",
        ),
        (
            "link replaced",
            edited("USER#", "CH#", "ver", None),
            "orphan link index item",
        ),
        (
            "stray value claim",
            orphan("VALUE#"),
            "points at a channel with another value",
        ),
        ("orphan link", orphan("LINK#"), "orphan link index item"),
        (
            "unknown item",
            orphan("SENDS#")
                .into_iter()
                .map(|mut i| {
                    if pk(&i).starts_with("SENDS#00") {
                        i.insert("pk".into(), AttributeValue::S("JUNK".into()));
                    }
                    i
                })
                .collect(),
            "no known kind",
        ),
    ];
    for (what, corrupted, expect) in cases {
        let found = check(&corrupted, MAX_ATTEMPTS);
        assert!(
            found.iter().any(|v| v.contains(expect)),
            "{what}: expected a violation containing {expect:?}, got {found:?}"
        );
    }
}
