//! The use cases without HTTP, on the in-memory store (which passes the same conformance suite
//! as the real ones) and a mailer that records or refuses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;

use super::*;
use crate::config::Profile;
use crate::domain::callback::CallbackUrl;
use crate::domain::channel::Digest;
use crate::domain::channel::VerificationStatus;
use crate::domain::secret::VerificationCode;
use crate::domain::{ChannelId, EmailAddress, Strategy};
use crate::mail::RecordingMailer;
use crate::store::memory::MemoryStore;
use crate::store::{Change, RedeemError, SendLogChange, StoreError, WriteError};

fn service(vars: &[(&str, &str)]) -> (Service, Arc<RecordingMailer>) {
    service_on(Arc::new(MemoryStore::new()), vars)
}

fn service_on(
    store: Arc<dyn ChannelStore>,
    vars: &[(&str, &str)],
) -> (Service, Arc<RecordingMailer>) {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = Config::from_lookup(Profile::Local, |name| {
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    let mailer = Arc::new(RecordingMailer::default());
    let service = Service::new(config, store).with_mailer(mailer.clone());
    (service, mailer)
}

/// The in-memory store, except that the next `failures` rollback writes (the changes that
/// release a send) fail as a throttled or disconnected store would, writing nothing.
struct FlakyRollbacks {
    inner: MemoryStore,
    failures: AtomicU32,
    rollback_writes: AtomicU32,
}

impl FlakyRollbacks {
    fn failing(failures: u32) -> Arc<FlakyRollbacks> {
        Arc::new(FlakyRollbacks {
            inner: MemoryStore::new(),
            failures: AtomicU32::new(failures),
            rollback_writes: AtomicU32::new(0),
        })
    }
}

#[async_trait]
impl ChannelStore for FlakyRollbacks {
    async fn list(&self, user: &UserId) -> Result<Vec<StoredChannel>, StoreError> {
        self.inner.list(user).await
    }
    async fn get(&self, user: &UserId, id: ChannelId) -> Result<Option<StoredChannel>, StoreError> {
        self.inner.get(user, id).await
    }
    async fn apply(&self, change: Change) -> Result<Option<StoredChannel>, WriteError> {
        let releases = matches!(
            change,
            Change::Update {
                send_log: Some(SendLogChange::Release { .. }),
                ..
            }
        );
        if releases {
            self.rollback_writes.fetch_add(1, Ordering::SeqCst);
            let fail = self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if fail.is_ok() {
                return Err(StoreError("throttled".into()).into());
            }
        }
        self.inner.apply(change).await
    }
    async fn find_link(&self, digest: &Digest) -> Result<Option<(UserId, ChannelId)>, StoreError> {
        self.inner.find_link(digest).await
    }
    async fn redeem_link(&self, digest: &Digest, now: i64) -> Result<(), RedeemError> {
        self.inner.redeem_link(digest, now).await
    }
    async fn send_log(&self, address: &EmailAddress) -> Result<Vec<i64>, StoreError> {
        self.inner.send_log(address).await
    }
}

fn alice() -> Caller {
    Caller::Client(UserId::parse("alice").unwrap())
}

fn create(value: &str) -> CreateChannel {
    CreateChannel {
        user: UserRef::Me,
        value: EmailAddress::parse(value).unwrap(),
        used_for_auth: false,
        is_primary: false,
        is_verified: None,
    }
}

fn at(channel: &StoredChannel) -> ChannelRef {
    ChannelRef {
        user: UserRef::Me,
        channel: Some(channel.record.id),
    }
}

fn code_in(text: &str) -> VerificationCode {
    let digits: String = text
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .to_owned();
    VerificationCode::parse(&digits).unwrap()
}

const CODE: SendVerification = SendVerification::Code { page: None };

#[tokio::test]
async fn a_client_creates_and_reads_its_own_channel() {
    let (s, _) = service(&[]);
    let created = s.create(&alice(), create("A@Example.com")).await.unwrap();
    assert_eq!(created.record.value.as_str(), "a@example.com");
    assert_eq!(created.record.user_id.as_str(), "alice");
    assert_eq!(s.read(&alice(), at(&created)).await.unwrap(), created);
}

#[tokio::test]
async fn a_client_naming_another_user_is_forbidden_and_a_server_must_name_one() {
    let (s, _) = service(&[]);
    let mut other = create("a@example.com");
    other.user = UserRef::parse("bob").unwrap();
    assert_eq!(
        s.create(&alice(), other).await,
        Err(ApiError::Forbidden(Action::Create))
    );
    assert_eq!(
        s.create(&Caller::Server, create("a@example.com")).await,
        Err(ApiError::CannotGetOwnUserWithoutUser)
    );
    let mut verified = create("a@example.com");
    verified.is_verified = Some(true);
    assert_eq!(
        s.create(&alice(), verified).await,
        Err(ApiError::ServerOnlyField)
    );
}

#[tokio::test]
async fn a_duplicate_value_names_the_existing_channel() {
    let (s, _) = service(&[]);
    let first = s.create(&alice(), create("a@example.com")).await.unwrap();
    assert_eq!(
        s.create(&alice(), create(" A@example.com")).await,
        Err(ApiError::ChannelAlreadyExists(Some(first.record.id)))
    );
}

#[tokio::test]
async fn a_malformed_channel_id_is_a_channel_that_does_not_exist() {
    let (s, _) = service(&[]);
    let missing = ChannelRef {
        user: UserRef::Me,
        channel: None,
    };
    assert_eq!(
        s.read(&alice(), missing.clone()).await,
        Err(ApiError::ChannelNotFound)
    );
    let unknown = ChannelRef {
        channel: Some(ChannelId::new_random()),
        ..missing
    };
    assert_eq!(
        s.delete(&alice(), unknown).await,
        Err(ApiError::ChannelNotFound)
    );
}

#[tokio::test]
async fn a_code_verifies_after_wrong_guesses_are_counted() {
    let (s, mail) = service(&[]);
    let c = s.create(&alice(), create("a@example.com")).await.unwrap();
    let sent = s.send_verification(&alice(), at(&c), CODE).await.unwrap();
    assert_eq!(sent.strategy, Strategy::EmailCode);
    let right = code_in(&mail.last_text());
    let wrong = VerificationCode::parse(if right.expose() == "000000" {
        "111111"
    } else {
        "000000"
    })
    .unwrap();
    assert_eq!(
        s.attempt(&alice(), at(&c), wrong).await,
        Err(ApiError::VerificationCodeIncorrect {
            attempts_remaining: 4
        })
    );
    let verified = s.attempt(&alice(), at(&c), right.clone()).await.unwrap();
    assert!(verified.record.is_verified);
    assert_eq!(verified.record.status(0, 5), VerificationStatus::Verified);
    assert_eq!(
        s.attempt(&alice(), at(&c), right).await,
        Err(ApiError::EmailAlreadyVerified)
    );
}

#[tokio::test]
async fn changing_the_value_unverifies_and_kills_the_outstanding_code() {
    let (s, mail) = service(&[]);
    let c = s.create(&alice(), create("a@example.com")).await.unwrap();
    s.send_verification(&alice(), at(&c), CODE).await.unwrap();
    let code = code_in(&mail.last_text());
    let change = UpdateChannel {
        value: Some(EmailAddress::parse("b@example.com").unwrap()),
        ..UpdateChannel::default()
    };
    let updated = s.update(&alice(), at(&c), change).await.unwrap();
    assert_eq!(updated.record.verification, None);
    assert_eq!(
        s.attempt(&alice(), at(&c), code).await,
        Err(ApiError::VerificationCodeNotFound)
    );
}

#[tokio::test]
async fn a_refused_mail_is_502_and_the_previous_code_still_works() {
    let (s, mail) = service(&[("SEND_COOLDOWN_SECONDS", "0")]);
    let c = s.create(&alice(), create("a@example.com")).await.unwrap();
    s.send_verification(&alice(), at(&c), CODE).await.unwrap();
    let first = code_in(&mail.last_text());
    mail.set_refusing(true);
    assert_eq!(
        s.send_verification(&alice(), at(&c), CODE).await,
        Err(ApiError::EmailDeliveryFailed)
    );
    assert!(s.attempt(&alice(), at(&c), first).await.is_ok());
}

#[tokio::test]
async fn a_refused_send_is_rolled_back_through_transient_store_failures() {
    let store = FlakyRollbacks::failing(3);
    let (s, mail) = service_on(store.clone(), &[("SEND_COOLDOWN_SECONDS", "0")]);
    let c = s.create(&alice(), create("a@example.com")).await.unwrap();
    s.send_verification(&alice(), at(&c), CODE).await.unwrap();
    let first = code_in(&mail.last_text());
    let before = s
        .store
        .get(&c.record.user_id, c.record.id)
        .await
        .unwrap()
        .unwrap();
    let log_before = s.store.send_log(&c.record.value).await.unwrap();

    mail.set_refusing(true);
    assert_eq!(
        s.send_verification(&alice(), at(&c), CODE).await,
        Err(ApiError::EmailDeliveryFailed)
    );
    let after = s
        .store
        .get(&c.record.user_id, c.record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.record.verification, before.record.verification);
    assert_eq!(
        after.record.last_sent_at_millis,
        before.record.last_sent_at_millis
    );
    assert_eq!(s.store.send_log(&c.record.value).await.unwrap(), log_before);
    assert_eq!(
        store.rollback_writes.load(Ordering::SeqCst),
        4,
        "three failures, then done"
    );
    // The code the user holds still works.
    assert!(s.attempt(&alice(), at(&c), first).await.is_ok());
}

#[tokio::test]
async fn a_refused_send_that_cannot_be_rolled_back_answers_500_not_502() {
    let store = FlakyRollbacks::failing(u32::MAX);
    let (s, mail) = service_on(store.clone(), &[("SEND_COOLDOWN_SECONDS", "0")]);
    let c = s.create(&alice(), create("a@example.com")).await.unwrap();
    mail.set_refusing(true);
    assert_eq!(
        s.send_verification(&alice(), at(&c), CODE).await,
        Err(ApiError::Internal)
    );
    assert_eq!(
        store.rollback_writes.load(Ordering::SeqCst),
        super::verification::ROLLBACK.attempts,
        "bounded retries"
    );
}

#[tokio::test]
async fn a_second_send_within_the_cooldown_is_rate_limited() {
    let (s, _) = service(&[("SEND_COOLDOWN_SECONDS", "30")]);
    let c = s.create(&alice(), create("a@example.com")).await.unwrap();
    s.send_verification(&alice(), at(&c), CODE).await.unwrap();
    match s.send_verification(&alice(), at(&c), CODE).await {
        Err(ApiError::RateLimited(wait)) => assert!((1..=30).contains(&wait)),
        other => panic!("expected 429, got {other:?}"),
    }
}

/// The cooldown protects the address: changing the value away and back does not skip it.
#[tokio::test]
async fn changing_the_value_away_and_back_does_not_skip_the_cooldown() {
    let (s, mail) = service(&[("SEND_COOLDOWN_SECONDS", "30")]);
    let c = s.create(&alice(), create("v1@example.com")).await.unwrap();
    let set_value = |value: &str| UpdateChannel {
        value: Some(EmailAddress::parse(value).unwrap()),
        used_for_auth: None,
        is_primary: None,
        is_verified: None,
    };
    s.send_verification(&alice(), at(&c), CODE).await.unwrap();
    s.update(&alice(), at(&c), set_value("v2@example.com"))
        .await
        .unwrap();
    s.send_verification(&alice(), at(&c), CODE).await.unwrap();
    s.update(&alice(), at(&c), set_value("v1@example.com"))
        .await
        .unwrap();
    match s.send_verification(&alice(), at(&c), CODE).await {
        Err(ApiError::RateLimited(wait)) => assert!((1..=30).contains(&wait)),
        other => panic!("expected 429, got {other:?}"),
    }
    let recipients: Vec<String> = mail.sent().iter().map(|m| m.to.to_string()).collect();
    assert_eq!(recipients, ["v1@example.com", "v2@example.com"]);
}

#[tokio::test]
async fn a_link_verifies_once_and_checks_without_being_used_up() {
    let (s, mail) = service(&[]);
    let c = s.create(&alice(), create("a@example.com")).await.unwrap();
    let callback = CallbackUrl::parse("http://localhost:3000/verify").unwrap();
    let link = SendVerification::Link { callback };
    s.send_verification(&alice(), at(&c), link).await.unwrap();
    let text = mail.last_text();
    let token = text
        .split("code=")
        .nth(1)
        .unwrap()
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(s.check_link(&token).await, Ok(()));
    assert_eq!(s.verify_link(&token).await, Ok(()));
    assert_eq!(
        s.verify_link(&token).await,
        Err(ApiError::VerificationCodeAlreadyUsed)
    );
    assert_eq!(
        s.verify_link("not-a-token").await,
        Err(ApiError::VerificationCodeNotFound)
    );
}

#[tokio::test]
async fn a_callback_outside_the_allow_list_is_refused() {
    let (s, _) = service(&[("ALLOWED_CALLBACK_URLS", "https://app.example.com")]);
    let c = s.create(&alice(), create("a@example.com")).await.unwrap();
    let callback = CallbackUrl::parse("https://evil.example/verify").unwrap();
    assert_eq!(
        s.send_verification(&alice(), at(&c), SendVerification::Link { callback })
            .await,
        Err(ApiError::RedirectUrlNotWhitelisted)
    );
}

#[tokio::test]
async fn a_process_without_a_mailer_never_pretends_to_send() {
    let config = Config::from_lookup(Profile::Local, |_| None).unwrap();
    let s = Service::new(config, Arc::new(MemoryStore::new()));
    let c = s.create(&alice(), create("a@example.com")).await.unwrap();
    assert_eq!(
        s.send_verification(&alice(), at(&c), CODE).await,
        Err(ApiError::Internal)
    );
}

/// Making a channel primary, on create or update, demotes the one that was: its version moves
/// (the store wrote it) and exactly one channel reads back primary.
#[tokio::test]
async fn a_new_primary_demotes_the_previous_one_on_create_and_update() {
    let (s, _) = service(&[]);
    let primary = |value: &str| CreateChannel {
        is_primary: true,
        ..create(value)
    };
    let a = s.create(&alice(), primary("a@example.com")).await.unwrap();
    assert!(a.is_primary);
    // A primary exists: the create's first try (assuming none) is stale, the second demotes.
    let b = s.create(&alice(), primary("b@example.com")).await.unwrap();
    assert!(b.is_primary);
    let a_now = s.read(&alice(), at(&a)).await.unwrap();
    assert_eq!((a_now.is_primary, a_now.record.version), (false, 2));
    let c = s.create(&alice(), create("c@example.com")).await.unwrap();
    let make_primary = UpdateChannel {
        is_primary: Some(true),
        ..UpdateChannel::default()
    };
    let c = s.update(&alice(), at(&c), make_primary).await.unwrap();
    assert!(c.is_primary);
    let b_now = s.read(&alice(), at(&b)).await.unwrap();
    assert_eq!((b_now.is_primary, b_now.record.version), (false, 2));
    let mine = ListChannels {
        user: UserRef::Me,
        only: None,
    };
    let listed = s.list(&alice(), mine).await;
    let primaries: Vec<_> = listed
        .unwrap()
        .into_iter()
        .filter(|x| x.is_primary)
        .map(|x| x.record.id)
        .collect();
    assert_eq!(primaries, [c.record.id]);
}
