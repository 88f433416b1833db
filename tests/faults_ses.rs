//! SES fault injection through the real SDK, on moto's SES v2: the fault proxy stands between
//! `SesMailer` and moto. For each fault the send's answer, the channel's stored code, the
//! address's send log (cooldown and daily cap) and the mail that reached SES end as docs/api.md §5.6
//! says: a `502` restores everything (the code the user held still works; neither the cooldown
//! nor the cap is consumed); a send whose mail SES accepted answers `200` even when one answer
//! was lost (the SDK's retry mails the same code again: a duplicate, no harm).
//!
//! When SES accepted the mail on every attempt but no answer came back, the send answers `502`
//! and is rolled back: the user received a code that no longer works (docs/security.md, "A mail
//! that went out though the send failed").

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sesv2::config::retry::RetryPartition;
use cc_aws::dynamo::DynamoStore;
use cc_ses::SesMailer;
use cc_tests::faults::{Dialect, Fault, FaultProxy, Times, retry_config, timeout_config};
use cc_tests::invariants::{check, scan};
use cc_tests::moto::{moto, uuid_like};
use cc_tests::six_digits;
use contact_channels::Service;
use contact_channels::auth::Caller;
use contact_channels::domain::channel::{StoredChannel, Verification};
use contact_channels::domain::secret::{Hasher, VerificationCode};
use contact_channels::domain::{ChannelId, EmailAddress, Strategy, UserId, UserRef, now_millis};
use contact_channels::error::ApiError;
use contact_channels::service::{ChannelRef, CreateChannel, SendVerification};
use contact_channels::store::{Change, ChannelStore, PrimaryChange};

/// The code the user holds from an earlier send, stored without touching the send log.
const EARLIER: &str = "314159";

struct Rig {
    proxy: FaultProxy,
    sender: String,
    direct: aws_sdk_dynamodb::Client,
    table: String,
    store: Arc<DynamoStore>,
    service: Service<DynamoStore>,
    hasher: Hasher,
}

async fn rig() -> Rig {
    let moto = moto();
    let proxy = FaultProxy::start(&moto.endpoint, Dialect::SesV2).await;
    let sdk = moto.sdk_config().await;
    let table = moto.new_table().await;
    let sender = moto.new_sender().await;
    let direct = aws_sdk_dynamodb::Client::new(&sdk);
    let store = Arc::new(DynamoStore::new(direct.clone(), &table));
    // Production's retry mode (standard, 3 attempts), timeouts scaled down, own token bucket.
    let ses = aws_sdk_sesv2::config::Builder::from(&sdk)
        .endpoint_url(&proxy.endpoint)
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .retry_partition(RetryPartition::new(format!("ses-{}", uuid_like())))
        .build();
    let mailer = Arc::new(SesMailer::new(
        aws_sdk_sesv2::Client::from_conf(ses),
        sender.clone(),
        None,
    ));
    // A cooldown and a cap of one: a send that consumed either makes the next send a 429.
    let vars = [("SEND_COOLDOWN_SECONDS", "30"), ("MAX_SENDS_PER_DAY", "1")];
    let config = cc_tests::local_config(&vars);
    let hasher = Hasher::new(config.verification_secret.clone());
    let service = Service::new(config, store.clone()).with_mailer(mailer);
    Rig {
        proxy,
        sender,
        direct,
        table,
        store,
        service,
        hasher,
    }
}

fn alice() -> UserId {
    UserId::parse("alice").unwrap()
}

fn at(id: ChannelId) -> ChannelRef {
    ChannelRef {
        user: UserRef::Id(alice()),
        channel: Some(id),
    }
}

impl Rig {
    /// A channel on a fresh address holding the code `EARLIER`, with an empty send log.
    async fn channel(&self) -> (ChannelId, EmailAddress) {
        let address = EmailAddress::parse(&format!("u{}@example.com", uuid_like())).unwrap();
        let command = CreateChannel {
            user: UserRef::Id(alice()),
            value: address.clone(),
            used_for_auth: false,
            is_primary: false,
            is_verified: None,
        };
        let created = self.service.create(&Caller::Server, command).await.unwrap();
        let before = created.record;
        let mut after = before.clone();
        after.verification = Some(Verification {
            strategy: Strategy::EmailCode,
            digest: self
                .hasher
                .code(before.id, &VerificationCode::parse(EARLIER).unwrap()),
            expires_at_millis: now_millis() + 600_000,
            attempts: 0,
            used: false,
        });
        let change = Change::Update {
            before: before.clone(),
            after,
            primary: PrimaryChange::Keep,
            was_primary: false,
            send_log: None,
        };
        self.store.apply(change).await.unwrap();
        (before.id, address)
    }

    async fn send(&self, id: ChannelId) -> Result<(), ApiError> {
        let command = SendVerification::Code { page: None };
        let call = self
            .service
            .send_verification(&Caller::Server, at(id), command);
        tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("a send must answer")
            .map(|_| ())
    }

    async fn stored(&self, id: ChannelId) -> StoredChannel {
        self.store.get(&alice(), id).await.unwrap().unwrap()
    }

    /// The codes of the mail SES accepted for `to`.
    async fn codes_mailed_to(&self, to: &EmailAddress) -> Vec<String> {
        moto()
            .sent_mail(&self.sender)
            .await
            .into_iter()
            .filter(|m| m["to"] == to.as_str())
            .map(|m| six_digits(m["text"].as_str().unwrap()).unwrap())
            .collect()
    }

    async fn attempt(&self, id: ChannelId, code: &str) -> Result<(), ApiError> {
        let code = VerificationCode::parse(code).unwrap();
        self.service
            .attempt(&Caller::Server, at(id), code)
            .await
            .map(|_| ())
    }

    async fn assert_consistent(&self, case: &str) {
        let violations = check(&scan(&self.direct, &self.table).await, 5);
        assert!(violations.is_empty(), "{case}: {violations:?}");
    }
}

/// The faults after which SES never accepted the mail: the send must answer 502 and leave
/// everything as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_ses_never_accepted_is_a_502_that_restores_the_code_and_the_limits() {
    let rig = rig().await;
    let kinds = [
        (Fault::Reject, Times::Once),
        (Fault::Throttle, Times::Always),
        (Fault::ServerError, Times::Always),
        (Fault::DropBefore, Times::Always),
    ];
    for (fault, times) in kinds {
        let case = format!("SES {fault:?} {times:?}");
        let (id, address) = rig.channel().await;
        let before = rig.stored(id).await;
        rig.proxy.arm(1, fault, times);
        let result = rig.send(id).await;
        let fired = rig.proxy.disarm();
        assert!(fired >= 1, "{case}: the fault never struck");
        assert_eq!(result, Err(ApiError::EmailDeliveryFailed), "{case}");
        rig.assert_consistent(&case).await;
        // The verification is the one before: the earlier code's digest, no guess spent.
        let after = rig.stored(id).await;
        assert_eq!(
            after.record.verification, before.record.verification,
            "{case}"
        );
        assert!(!after.record.is_verified, "{case}");
        assert!(rig.codes_mailed_to(&address).await.is_empty(), "{case}");
        assert_eq!(
            rig.store.send_log(&address).await.unwrap(),
            Vec::<i64>::new(),
            "{case}: the refused send must not stay in the send log"
        );
        // Neither the 30 s cooldown nor the cap of one was consumed: a send right away works.
        assert_eq!(rig.send(id).await, Ok(()), "{case}: the next send");
        let mailed = rig.codes_mailed_to(&address).await;
        assert_eq!(mailed.len(), 1, "{case}");
        assert_eq!(rig.attempt(id, &mailed[0]).await, Ok(()), "{case}");
        rig.assert_consistent(&case).await;
    }
    // And the earlier code works after a refused send (no resend in between).
    let (id, _) = rig.channel().await;
    rig.proxy.arm(1, Fault::Reject, Times::Once);
    assert_eq!(rig.send(id).await, Err(ApiError::EmailDeliveryFailed));
    rig.proxy.disarm();
    assert_eq!(rig.attempt(id, EARLIER).await, Ok(()));
}

/// SES accepted the mail; a throttled first attempt or a lost answer is retried by the SDK and
/// the send answers 200. A lost answer means SES sent the mail twice (SendEmail has no
/// idempotency token): the same code twice, which verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_ses_accepted_after_a_retry_is_a_200_whose_code_verifies() {
    let rig = rig().await;
    let kinds = [
        (Fault::Throttle, Times::Once, 1),
        (Fault::ServerError, Times::Once, 1),
        (Fault::DropAfter, Times::Once, 2),
        (Fault::TimeoutAfter, Times::Once, 2),
    ];
    for (fault, times, copies) in kinds {
        let case = format!("SES {fault:?} {times:?}");
        let (id, address) = rig.channel().await;
        rig.proxy.arm(1, fault, times);
        let result = rig.send(id).await;
        rig.proxy.disarm();
        assert_eq!(result, Ok(()), "{case}");
        rig.assert_consistent(&case).await;
        let mailed = rig.codes_mailed_to(&address).await;
        assert_eq!(mailed.len(), copies, "{case}: mails SES accepted");
        assert!(mailed.iter().all(|c| *c == mailed[0]), "{case}: one code");
        assert_eq!(
            rig.store.send_log(&address).await.unwrap().len(),
            1,
            "{case}"
        );
        let again = rig.send(id).await;
        assert!(
            matches!(again, Err(ApiError::RateLimited(_))),
            "{case}: the send counted: {again:?}"
        );
        assert_eq!(rig.attempt(id, &mailed[0]).await, Ok(()), "{case}");
    }
}

/// SES accepted the mail on every attempt but no answer came back: the send cannot tell a sent
/// mail from a refused one, answers 502 and rolls back. The user holds copies of a code that no
/// longer works; the earlier code still does, and the limits were not consumed, so an immediate
/// resend works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_that_went_out_though_every_answer_was_lost_is_a_502_and_its_code_is_dead() {
    let rig = rig().await;
    for fault in [Fault::DropAfter, Fault::TimeoutAfter] {
        let case = format!("SES {fault:?} Always");
        let (id, address) = rig.channel().await;
        let before = rig.stored(id).await;
        rig.proxy.arm(1, fault, Times::Always);
        let result = rig.send(id).await;
        rig.proxy.disarm();
        assert_eq!(result, Err(ApiError::EmailDeliveryFailed), "{case}");
        rig.assert_consistent(&case).await;
        let mailed = rig.codes_mailed_to(&address).await;
        assert_eq!(mailed.len(), 3, "{case}: one mail per SDK attempt went out");
        let after = rig.stored(id).await;
        assert_eq!(
            after.record.verification, before.record.verification,
            "{case}"
        );
        assert!(
            rig.store.send_log(&address).await.unwrap().is_empty(),
            "{case}"
        );
        if mailed[0] != EARLIER {
            assert_eq!(
                rig.attempt(id, &mailed[0]).await,
                Err(ApiError::VerificationCodeIncorrect {
                    attempts_remaining: 4
                }),
                "{case}: the mailed code was rolled back"
            );
        }
        assert_eq!(rig.attempt(id, EARLIER).await, Ok(()), "{case}");
    }
    // Not consumed: after such a 502 a resend goes out at once, despite the 30 s cooldown.
    let (id, address) = rig.channel().await;
    rig.proxy.arm(1, Fault::DropAfter, Times::Always);
    assert_eq!(rig.send(id).await, Err(ApiError::EmailDeliveryFailed));
    rig.proxy.disarm();
    assert_eq!(rig.send(id).await, Ok(()));
    let mailed = rig.codes_mailed_to(&address).await;
    assert_eq!(mailed.len(), 4);
    // Newest first: the resend's code verifies.
    assert_eq!(rig.attempt(id, &mailed[0]).await, Ok(()));
}
