//! The SAM stack as shipped: `template.yaml` read as data (least-privilege IAM, routes, table
//! and secret settings) and the artifacts `sam build` produced (`make test-sam` builds them).

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_norway::Value;

const FUNCTIONS: [&str; 7] = [
    "CreateFunction",
    "ListFunction",
    "PatchFunction",
    "DeleteFunction",
    "SendVerificationFunction",
    "AttemptFunction",
    "EventsFunction",
];

/// The functions behind the HTTP API (the seventh reads the table's stream).
const HTTP_FUNCTIONS: [&str; 6] = [
    "CreateFunction",
    "ListFunction",
    "PatchFunction",
    "DeleteFunction",
    "SendVerificationFunction",
    "AttemptFunction",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// A CloudFormation short-form tag (`!Ref X`) seen as its plain value.
fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn strings(v: &Value) -> Vec<String> {
    match untag(v) {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        other => vec![format!("{other:?}")],
    }
}

fn resource<'a>(t: &'a Value, name: &str) -> &'a Value {
    &t["Resources"][name]
}

/// Every (effect, action, resource) the function's inline policies grant.
fn grants(t: &Value, function: &str) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    let policies = resource(t, function)["Properties"]["Policies"]
        .as_sequence()
        .expect("inline policies");
    for policy in policies {
        for statement in policy["Statement"].as_sequence().expect("statements") {
            let effect = statement["Effect"].as_str().unwrap().to_owned();
            let resources = strings(&statement["Resource"]);
            for action in strings(&statement["Action"]) {
                out.push((effect.clone(), action, resources.clone()));
            }
        }
    }
    out
}

#[test]
fn every_function_is_granted_exactly_the_actions_it_calls() {
    let t = template();
    let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
        (
            "CreateFunction",
            &["dynamodb:PutItem", "dynamodb:UpdateItem"][..],
        ),
        ("ListFunction", &["dynamodb:GetItem", "dynamodb:Query"][..]),
        (
            "PatchFunction",
            &[
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ][..],
        ),
        (
            "DeleteFunction",
            &[
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:UpdateItem",
            ][..],
        ),
        (
            "SendVerificationFunction",
            &[
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "ses:SendEmail",
            ][..],
        ),
        (
            "AttemptFunction",
            &[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ][..],
        ),
        (
            "EventsFunction",
            &[
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:ListStreams",
                "events:PutEvents",
                "sqs:SendMessage",
            ][..],
        ),
    ]);
    for function in FUNCTIONS {
        let grants = grants(&t, function);
        let actions: BTreeSet<&str> = grants.iter().map(|(_, a, _)| a.as_str()).collect();
        let want: BTreeSet<&str> = expected[function].iter().copied().collect();
        assert_eq!(actions, want, "{function}");
        for (effect, action, resources) in &grants {
            assert_eq!(effect, "Allow");
            assert!(
                !action.contains('*'),
                "{function}: wildcard action {action}"
            );
            assert!(
                !resources.iter().any(|r| r == "*"),
                "{function}: {action} on every resource"
            );
            let stream_read = [
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
            ];
            if stream_read.contains(&action.as_str()) {
                assert_eq!(resources, &vec!["Table.StreamArn".to_owned()], "{function}");
            } else if action == "dynamodb:ListStreams" {
                assert_eq!(resources, &vec!["${Table.Arn}/stream/*".to_owned()]);
            } else if action == "events:PutEvents" {
                assert_eq!(resources, &vec!["EventBus.Arn".to_owned()], "its bus only");
            } else if action == "sqs:SendMessage" {
                assert_eq!(resources, &vec!["EventsDeadLetterQueue.Arn".to_owned()]);
            } else if action.starts_with("dynamodb:") {
                assert_eq!(
                    resources,
                    &vec!["Table.Arn".to_owned()],
                    "{function}: {action} beyond the table"
                );
            }
            if action == "ses:SendEmail" {
                assert!(
                    resources
                        .iter()
                        .all(|r| r.contains(":identity/${SesIdentity}")
                            || r.contains("configuration-set")
                            || r == "HasConfigurationSet"
                            || r == "AWS::NoValue"),
                    "{resources:?}"
                );
            }
        }
    }
}

#[test]
fn nothing_scans_and_only_send_verification_may_send_mail() {
    let t = template();
    for function in FUNCTIONS {
        for (_, action, _) in grants(&t, function) {
            assert_ne!(action, "dynamodb:Scan", "{function}");
            if action.starts_with("ses:") {
                assert_eq!(function, "SendVerificationFunction");
            }
        }
    }
}

#[test]
fn every_route_of_the_contract_reaches_its_function() {
    let t = template();
    let mut routes = BTreeSet::new();
    for function in HTTP_FUNCTIONS {
        let f = resource(&t, function);
        assert_eq!(f["Metadata"]["BuildMethod"].as_str(), Some("makefile"));
        for (_, event) in f["Properties"]["Events"].as_mapping().unwrap() {
            assert_eq!(event["Type"].as_str(), Some("HttpApi"));
            let p = &event["Properties"];
            routes.insert((
                function,
                p["Method"].as_str().unwrap().to_owned(),
                p["Path"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let base = "/api/v1/contact-channels";
    let one = format!("{base}/{{user_id}}/{{contact_channel_id}}");
    let expected = BTreeSet::from([
        ("CreateFunction", "POST".to_owned(), base.to_owned()),
        ("ListFunction", "GET".to_owned(), base.to_owned()),
        ("ListFunction", "GET".to_owned(), one.clone()),
        ("ListFunction", "ANY".to_owned(), "$default".to_owned()),
        ("PatchFunction", "PATCH".to_owned(), one.clone()),
        ("DeleteFunction", "DELETE".to_owned(), one.clone()),
        (
            "SendVerificationFunction",
            "POST".to_owned(),
            format!("{one}/send-verification-code"),
        ),
        (
            "AttemptFunction",
            "POST".to_owned(),
            format!("{one}/attempt-verification"),
        ),
        (
            "AttemptFunction",
            "POST".to_owned(),
            format!("{base}/verify"),
        ),
        (
            "AttemptFunction",
            "POST".to_owned(),
            format!("{base}/verify/check-code"),
        ),
    ]);
    assert_eq!(routes, expected);
}

#[test]
fn the_events_function_reads_only_channel_and_meta_records_of_the_stream_and_reports_failures() {
    let t = template();
    assert_eq!(
        resource(&t, "Table")["Properties"]["StreamSpecification"]["StreamViewType"].as_str(),
        Some("NEW_AND_OLD_IMAGES")
    );
    assert!(
        resource(&t, "EventsFunction")["Properties"]
            .get("Events")
            .is_none(),
        "a SAM stream event would attach a managed policy on every stream"
    );
    let m = &resource(&t, "EventsStreamMapping")["Properties"];
    assert_eq!(strings(&m["EventSourceArn"]), ["Table.StreamArn"]);
    assert_eq!(strings(&m["FunctionName"]), ["EventsFunction"]);
    assert_eq!(m["BisectBatchOnFunctionError"].as_bool(), Some(true));
    assert_eq!(
        strings(&m["FunctionResponseTypes"]),
        ["ReportBatchItemFailures"]
    );
    assert_eq!(
        strings(&m["DestinationConfig"]["OnFailure"]["Destination"]),
        ["EventsDeadLetterQueue.Arn"]
    );
    assert_eq!(strings(&m["BatchSize"]), ["EventsBatchSize"]);
    assert_eq!(
        strings(&m["MaximumBatchingWindowInSeconds"]),
        ["EventsBatchWindowSeconds"]
    );
    let patterns: Vec<serde_json::Value> = m["FilterCriteria"]["Filters"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|f| serde_json::from_str(f["Pattern"].as_str().unwrap()).unwrap())
        .collect();
    let sk: Vec<&serde_json::Value> = patterns
        .iter()
        .map(|p| &p["dynamodb"]["Keys"]["sk"]["S"][0])
        .collect();
    assert_eq!(
        sk,
        [
            &serde_json::json!({"prefix": "CH#"}),
            &serde_json::json!("META")
        ]
    );
    for p in &patterns {
        assert_eq!(
            p["dynamodb"]["Keys"]["pk"]["S"][0],
            serde_json::json!({"prefix": "USER#"})
        );
    }
    let alarm = &resource(&t, "EventsDeadLetterAlarm")["Properties"];
    assert_eq!(
        strings(&alarm["Dimensions"][0]["Value"]),
        ["EventsDeadLetterQueue.QueueName"]
    );
    assert!(t["Outputs"]["EventBusName"].is_mapping());
}

#[test]
fn the_table_survives_stack_changes_and_is_protected() {
    let t = template();
    let table = resource(&t, "Table");
    assert_eq!(table["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(table["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let p = &table["Properties"];
    assert_eq!(p["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        p["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some("ttl")
    );
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
    assert_eq!(p["SSESpecification"]["SSEEnabled"].as_bool(), Some(true));
}

#[test]
fn the_verification_secret_is_generated_never_a_parameter() {
    let t = template();
    let params = t["Parameters"].as_mapping().unwrap();
    assert!(
        params
            .keys()
            .all(|k| !k.as_str().unwrap().to_lowercase().contains("secret"))
    );
    let secret = resource(&t, "VerificationSecret");
    assert_eq!(secret["Type"].as_str(), Some("AWS::SecretsManager::Secret"));
    assert!(
        secret["Properties"]["GenerateSecretString"]["PasswordLength"]
            .as_u64()
            .unwrap()
            >= 32
    );
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    let reference = strings(&env["VERIFICATION_SECRET"]).join("");
    assert!(
        reference.contains("{{resolve:secretsmanager:${VerificationSecret}"),
        "{reference}"
    );
}

#[test]
#[ignore = "needs `sam build` first; `make test-sam` (part of `make test`) runs it after the build"]
fn sam_built_every_function_as_an_executable_bootstrap() {
    use std::os::unix::fs::PermissionsExt;
    for function in FUNCTIONS {
        let path = root()
            .join(".aws-sam/build")
            .join(function)
            .join("bootstrap");
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run `make test-sam`, which runs `sam build`)",
                path.display()
            )
        });
        assert!(
            meta.permissions().mode() & 0o111 != 0,
            "{} is not executable",
            path.display()
        );
        let head = std::fs::read(&path).unwrap();
        assert_eq!(
            &head[..4],
            b"\x7fELF",
            "{} is not an ELF binary",
            path.display()
        );
    }
}
