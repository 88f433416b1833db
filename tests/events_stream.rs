//! Lifecycle events end to end on moto: a session of API calls written by the real DynamoDB
//! store into a table with a stream, the stream records read back with the DynamoDB Streams API
//! and handed, as a Lambda event, to the `cc-events` binary through the in-test Runtime API; it
//! publishes to an EventBridge bus whose rule targets an SQS queue, and the events are read back
//! from the queue. Also: `events/stream.json`, a PutEvents partial failure, a malformed record.

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
use aws_sdk_eventbridge::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_eventbridge::operation::put_events::PutEventsInput;
use cc_eventbridge::Publisher;
use cc_tests::moto::{REGION, moto, uuid_like};
use cc_tests::runtime::{Function, Outcome};
use cc_tests::{As, Backend, LocalServer, six_digits};
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";

/// One JSON-protocol call to moto, for the services the tests only read (SQS, DynamoDB Streams):
/// moto does not check signatures, but picks the service from the credential scope.
async fn call(service: &str, target: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(&moto().endpoint)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", target)
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("moto answers");
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{target}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A bus with a rule that sends every contact-channels event to a fresh SQS queue.
struct Bus {
    name: String,
    queue_url: String,
}

impl Bus {
    async fn new() -> Bus {
        let name = format!("cc-events-{}", uuid_like());
        let queue = call("sqs", "AmazonSQS.CreateQueue", json!({ "QueueName": name })).await;
        let queue_url = queue["QueueUrl"].as_str().unwrap().to_owned();
        let eb = aws_sdk_eventbridge::Client::new(&moto().sdk_config().await);
        eb.create_event_bus().name(&name).send().await.unwrap();
        eb.put_rule()
            .name("all-contact-channel-events")
            .event_bus_name(&name)
            .event_pattern(json!({ "source": ["contact-channels"] }).to_string())
            .send()
            .await
            .unwrap();
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("queue")
            .arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"))
            .build()
            .unwrap();
        eb.put_targets()
            .rule("all-contact-channel-events")
            .event_bus_name(&name)
            .targets(target)
            .send()
            .await
            .unwrap();
        Bus { name, queue_url }
    }

    /// Every event delivered to the queue so far, in order.
    async fn events(&self) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let out = call(
                "sqs",
                "AmazonSQS.ReceiveMessage",
                json!({ "QueueUrl": self.queue_url, "MaxNumberOfMessages": 10 }),
            )
            .await;
            let messages = out["Messages"].as_array().cloned().unwrap_or_default();
            if messages.is_empty() {
                return events;
            }
            for m in messages {
                events.push(serde_json::from_str(m["Body"].as_str().unwrap()).unwrap());
                call(
                    "sqs",
                    "AmazonSQS.DeleteMessage",
                    json!({ "QueueUrl": self.queue_url, "ReceiptHandle": m["ReceiptHandle"] }),
                )
                .await;
            }
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut env = moto().env();
        env.push(("EVENT_BUS_NAME".into(), self.name.clone()));
        env
    }
}

/// A table of the service's key design with a NEW_AND_OLD_IMAGES stream, and its stream ARN.
async fn table_with_stream() -> (String, String) {
    let table = moto().new_table().await;
    let ddb = aws_sdk_dynamodb::Client::new(&moto().sdk_config().await);
    let spec = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .unwrap();
    ddb.update_table()
        .table_name(&table)
        .stream_specification(spec)
        .send()
        .await
        .unwrap();
    let described = ddb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let arn = described
        .table()
        .unwrap()
        .latest_stream_arn()
        .unwrap()
        .to_owned();
    (table, arn)
}

/// The local server on DynamoDB (moto) with a table that has a stream, and the stream's ARN.
async fn server_on_stream() -> (LocalServer, String) {
    let (table, arn) = table_with_stream().await;
    let server = LocalServer::start_with(
        Backend::Aws,
        &[("TABLE_NAME", table.as_str()), ("MAILER", "outbox")],
    )
    .await;
    (server, arn)
}

/// Every record of the stream so far, shaped as Lambda delivers them (what `events/stream.json`
/// holds): the Streams API record plus `eventSourceARN`, the time in epoch seconds.
async fn stream_event(arn: &str) -> Value {
    let target = |op: &str| format!("DynamoDBStreams_20120810.{op}");
    let stream = call(
        "dynamodb",
        &target("DescribeStream"),
        json!({ "StreamArn": arn }),
    )
    .await;
    let shard = stream["StreamDescription"]["Shards"][0]["ShardId"].clone();
    let it = call(
        "dynamodb",
        &target("GetShardIterator"),
        json!({ "StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON" }),
    )
    .await;
    let out = call(
        "dynamodb",
        &target("GetRecords"),
        json!({ "ShardIterator": it["ShardIterator"], "Limit": 1000 }),
    )
    .await;
    let records: Vec<Value> = out["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r["eventSourceARN"] = json!(arn);
            r["dynamodb"]["ApproximateCreationDateTime"] = json!(1_764_500_000);
            r
        })
        .collect();
    json!({ "Records": records })
}

/// Runs `cc-events` on one Lambda event; its answer (the batch item failures).
async fn invoke(env: &[(String, String)], event: Value) -> Value {
    let function = Function::start("cc-events", env).await;
    match function.api.invoke(event).await {
        Outcome::Response(r) => r,
        Outcome::Error(e) => panic!("invocation error {e}; log: {}", function.log()),
    }
}

fn summary(events: &[Value]) -> Vec<(String, Value)> {
    events
        .iter()
        .map(|e| {
            assert_eq!(e["source"], "contact-channels");
            assert_eq!(e["detail"]["type"], e["detail-type"]);
            (
                e["detail-type"].as_str().unwrap().to_owned(),
                e["detail"]["contact_channel_id"].clone(),
            )
        })
        .collect()
}

/// The session both paths are checked with: create A (primary), send a code, prove it,
/// create B (primary), change A's value, delete A. Returns the user, A, B and the code.
async fn session(server: &LocalServer) -> (String, String, String, String) {
    let api = server.api();
    let user = format!("u-{}", uuid_like());
    let created = api
        .create(
            &As::Server,
            json!({"user_id": user, "type": "email", "value": "ev@example.com", "used_for_auth": true, "is_primary": true}),
        )
        .await;
    let a = created.assert_ok(201)["id"].as_str().unwrap().to_owned();
    api.send(
        reqwest::Method::POST,
        &format!("/api/v1/contact-channels/{user}/{a}/send-verification-code"),
        &As::Server,
        Some(json!({"strategy": "email_code"})),
    )
    .await
    .assert_ok(200);
    let mail: Value = reqwest::get(format!("{}/_dev/mailbox.json", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = six_digits(mail[0]["text"].as_str().unwrap()).unwrap();
    api.send(
        reqwest::Method::POST,
        &format!("/api/v1/contact-channels/{user}/{a}/attempt-verification"),
        &As::Server,
        Some(json!({ "code": code })),
    )
    .await
    .assert_ok(200);
    let b = api
        .create(
            &As::Server,
            json!({"user_id": user, "type": "email", "value": "ev2@example.com", "used_for_auth": false, "is_primary": true}),
        )
        .await
        .assert_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.patch(&As::Server, &user, &a, json!({"value": "ev3@example.com"}))
        .await
        .assert_ok(200);
    api.delete(&As::Server, &user, &a).await.assert_ok(200);

    (user, a, b, code)
}

/// The events of [`session`], in commit order: (detail-type, channel id).
fn session_events(a: &str, b: &str) -> Vec<(String, Value)> {
    [
        ("contact_channel.primary_changed", a),
        ("contact_channel.created", a),
        ("verification.sent", a),
        ("contact_channel.verified", a),
        ("contact_channel.primary_changed", b),
        ("contact_channel.created", b),
        ("contact_channel.updated", a),
        ("contact_channel.unverified", a),
        ("contact_channel.deleted", a),
    ]
    .iter()
    .map(|(t, id)| (t.to_string(), json!(id)))
    .collect()
}

#[tokio::test]
async fn a_session_on_dynamodb_reaches_the_bus_as_events_in_commit_order() {
    let (server, arn) = server_on_stream().await;
    let (user, a, b, code) = session(&server).await;

    let event = stream_event(&arn).await;
    // What `events/stream.json` was made from (ids and user then replaced by fixed ones). In
    // cargo's scratch directory for integration tests, which follows `CARGO_TARGET_DIR`.
    std::fs::write(
        concat!(env!("CARGO_TARGET_TMPDIR"), "/stream-capture.json"),
        serde_json::to_string_pretty(&event).unwrap(),
    )
    .unwrap();
    let bus = Bus::new().await;
    let answer = invoke(&bus.env(), event.clone()).await;
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    let events = bus.events().await;
    let got = summary(&events);
    let expected = session_events(&a, &b);
    assert_eq!(got, expected, "events: {events:#?}");

    // The detail is the API's channel JSON, and no secret travels.
    assert_eq!(events[1]["detail"]["channel"]["is_primary"], true);
    let verified = &events[3]["detail"];
    assert_eq!(verified["channel"]["verification"]["status"], "verified");
    assert_eq!(verified["channel"]["value"], "ev@example.com");
    assert_eq!(verified["user_id"], json!(user));
    assert_eq!(
        events[4]["detail"]["previous"],
        json!({ "primary_contact_channel_id": a })
    );
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains(&code), "the code never travels");
    assert!(!all.contains("digest"));

    // A redelivery of the same records publishes the same event ids (consumers de-duplicate).
    let again = Bus::new().await;
    invoke(&again.env(), event).await;
    let ids = |events: &[Value]| -> Vec<Value> {
        events
            .iter()
            .map(|e| e["detail"]["event_id"].clone())
            .collect()
    };
    assert_eq!(ids(&again.events().await), ids(&events));
}

/// The stream records of one channel item, in order.
fn records_of(event: &Value, id: &str) -> Vec<Value> {
    let sk = format!("CH#{id}");
    event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["dynamodb"]["Keys"]["sk"]["S"] == json!(sk))
        .cloned()
        .collect()
}

/// The attributes whose values differ between a record's old and new image.
fn changed_attributes(record: &Value) -> Vec<String> {
    let (old, new) = (
        &record["dynamodb"]["OldImage"],
        &record["dynamodb"]["NewImage"],
    );
    let mut names: Vec<String> = old
        .as_object()
        .unwrap()
        .keys()
        .chain(new.as_object().unwrap().keys())
        .filter(|k| old.get(k.as_str()) != new.get(k.as_str()))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A channel record alone says whether the channel is primary: a batch holding only the
/// record of a value change of the primary channel (no meta record: that update does not
/// write it) shows it primary, where guessing from the batch's meta records said `false`; and
/// the record of the demotion that making another channel primary writes makes no event.
#[tokio::test]
async fn a_channel_record_alone_says_whether_it_is_primary() {
    let (server, arn) = server_on_stream().await;
    let api = server.api();
    let user = format!("u-{}", uuid_like());
    let create = |value: &str| json!({"user_id": user, "type": "email", "value": value, "used_for_auth": false, "is_primary": true});
    let a = api.create(&As::Server, create("one@example.com")).await;
    let a = a.assert_ok(201)["id"].as_str().unwrap().to_owned();
    api.patch(&As::Server, &user, &a, json!({"value": "two@example.com"}))
        .await
        .assert_ok(200);
    let b = api.create(&As::Server, create("three@example.com")).await;
    let b = b.assert_ok(201)["id"].as_str().unwrap().to_owned();

    let event = stream_event(&arn).await;
    let of_a = records_of(&event, &a);
    assert_eq!(of_a.len(), 3, "created, value changed, demoted: {of_a:#?}");
    let value_change = &of_a[1];
    assert!(changed_attributes(value_change).contains(&"value".to_owned()));
    let bus = Bus::new().await;
    let answer = invoke(&bus.env(), json!({ "Records": [value_change] })).await;
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    let events = bus.events().await;
    assert_eq!(
        summary(&events),
        [("contact_channel.updated".to_owned(), json!(a))]
    );
    assert_eq!(events[0]["detail"]["channel"]["is_primary"], true);
    assert_eq!(events[0]["detail"]["channel"]["value"], "two@example.com");

    // Making `b` primary wrote `a` with its flag off and its version up, nothing else.
    let demotion = &of_a[2];
    assert_eq!(changed_attributes(demotion), ["is_primary", "version"]);
    assert_eq!(demotion["dynamodb"]["OldImage"]["is_primary"]["BOOL"], true);
    assert_eq!(
        demotion["dynamodb"]["NewImage"]["is_primary"]["BOOL"],
        false
    );
    let bus = Bus::new().await;
    let answer = invoke(&bus.env(), json!({ "Records": [demotion] })).await;
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    assert!(bus.events().await.is_empty());

    // And `b`'s creation alone shows it primary.
    let bus = Bus::new().await;
    let of_b = records_of(&event, &b);
    invoke(&bus.env(), json!({ "Records": [&of_b[0]] })).await;
    let events = bus.events().await;
    assert_eq!(
        summary(&events),
        [("contact_channel.created".to_owned(), json!(b))]
    );
    assert_eq!(events[0]["detail"]["channel"]["is_primary"], true);
}

/// The detail-types that reached the queue, in order.
async fn types(bus: &Bus) -> Vec<String> {
    summary(&bus.events().await)
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

#[tokio::test]
async fn the_local_server_shows_the_same_events_of_a_session_at_dev_events() {
    let server = LocalServer::start_with(Backend::Local, &[]).await;
    let (user, a, b, code) = session(&server).await;
    let get = |path: &str| reqwest::get(format!("{}{path}", server.base));
    let mut events: Vec<Value> = get("/_dev/events.json")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    events.reverse(); // newest first there
    assert_eq!(summary(&events), session_events(&a, &b));
    assert!(events.iter().all(|e| e["detail"]["user_id"] == json!(user)));
    assert_eq!(
        events[6]["detail"]["previous"],
        json!({"value": "ev@example.com"})
    );
    assert_eq!(events[1]["detail"]["channel"]["is_primary"], true);
    assert!(!serde_json::to_string(&events).unwrap().contains(&code));
    for e in &events {
        conforms(&e["detail"], e["detail-type"].as_str().unwrap());
    }
    let page = get("/_dev/events").await.unwrap().text().await.unwrap();
    let newest = page.find("contact_channel.deleted").unwrap();
    let oldest = page.rfind("contact_channel.created").unwrap();
    assert!(newest < oldest, "newest first");
}

fn schema(name: &str) -> Value {
    let path = format!(
        "{}/../docs/events/{name}.schema.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The documented schema's object rules hold: every required key is there, no other key is
/// (the detail, its `channel`, and its `channel.verification`), and the type is its own.
fn conforms(detail: &Value, kind: &str) {
    fn keys_match(value: &Value, schema: &Value, what: &str) {
        let object = value.as_object().unwrap();
        let allowed = schema["properties"].as_object().unwrap();
        for key in object.keys() {
            assert!(allowed.contains_key(key), "{what}: undocumented {key}");
        }
        for key in schema["required"].as_array().into_iter().flatten() {
            assert!(
                object.contains_key(key.as_str().unwrap()),
                "{what}: lacks {key}"
            );
        }
    }
    let s = schema(kind);
    assert_eq!(s["properties"]["type"]["const"], kind);
    keys_match(detail, &s, kind);
    if detail.get("channel").is_some() {
        let c = schema("channel");
        keys_match(&detail["channel"], &c, "channel");
        keys_match(
            &detail["channel"]["verification"],
            &c["properties"]["verification"],
            "channel.verification",
        );
    }
}

#[test]
fn every_event_type_has_a_schema_file() {
    for kind in contact_channels::events::EventType::ALL {
        assert_eq!(
            schema(kind.as_str())["title"],
            format!("{} detail", kind.as_str())
        );
    }
}

fn sample() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/stream.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn the_sample_stream_event_publishes_its_events() {
    let bus = Bus::new().await;
    let answer = invoke(&bus.env(), sample()).await;
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    assert_eq!(
        types(&bus).await,
        [
            "contact_channel.primary_changed",
            "contact_channel.created",
            "verification.sent",
            "contact_channel.verified",
            "contact_channel.primary_changed",
            "contact_channel.created",
            "contact_channel.updated",
            "contact_channel.unverified",
            "contact_channel.deleted",
        ]
    );
}

#[tokio::test]
async fn a_malformed_record_is_a_batch_item_failure_and_what_precedes_it_is_published() {
    let mut event = sample();
    let records = event["Records"].as_array_mut().unwrap();
    let mut broken = records[4].clone();
    broken["dynamodb"]["SequenceNumber"] = json!("999000000000000000001");
    broken["dynamodb"]["NewImage"]["version"] = json!({ "S": "not a number" });
    records.insert(5, broken);
    records.insert(
        6,
        json!({ "dynamodb": { "SequenceNumber": "999000000000000000002" } }),
    );
    let bus = Bus::new().await;
    let answer = invoke(&bus.env(), event).await;
    assert_eq!(
        answer,
        json!({ "batchItemFailures": [{ "itemIdentifier": "999000000000000000001" }] })
    );
    assert_eq!(
        types(&bus).await,
        ["contact_channel.primary_changed", "contact_channel.created"]
    );
}

/// Makes EventBridge refuse the entries of one detail-type, by sending them with a detail
/// that is not JSON: moto then fails exactly those entries (`MalformedDetail`, counted in
/// `FailedEntryCount`), as EventBridge fails entries it cannot take. moto has no switch to
/// fail entries on demand; this keeps the real SDK, wire and server response.
#[derive(Debug)]
struct SpoilDetail(&'static str);

impl Intercept for SpoilDetail {
    fn name(&self) -> &'static str {
        "SpoilDetail"
    }

    fn modify_before_serialization(
        &self,
        context: &mut aws_sdk_eventbridge::config::interceptors::BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_eventbridge::error::BoxError> {
        if let Some(input) = context.input_mut().downcast_mut::<PutEventsInput>() {
            for entry in input.entries.iter_mut().flatten() {
                if entry.detail_type.as_deref() == Some(self.0) {
                    entry.detail = Some("{not json".to_owned());
                }
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn entries_putevents_refuses_are_reported_as_the_records_to_retry() {
    let bus = Bus::new().await;
    let sdk = moto().sdk_config().await;
    let config = aws_sdk_eventbridge::config::Builder::from(&sdk)
        .interceptor(SpoilDetail("contact_channel.verified"))
        .build();
    let publisher = Publisher::new(aws_sdk_eventbridge::Client::from_conf(config), &bus.name, 5);
    let event = sample();
    let verified_seq = event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["dynamodb"]["NewImage"]["is_verified"]["BOOL"] == true
                && r["dynamodb"]["OldImage"]["is_verified"]["BOOL"] == false
        })
        .unwrap()["dynamodb"]["SequenceNumber"]
        .clone();
    let answer = serde_json::to_value(publisher.handle(&event).await).unwrap();
    assert_eq!(
        answer,
        json!({ "batchItemFailures": [{ "itemIdentifier": verified_seq }] })
    );
    // The rest of that PutEvents call went through (at-least-once: they come again on retry).
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(bus.events().await.len() >= 3);
}
