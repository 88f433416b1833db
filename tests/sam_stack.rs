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

/// The one Secrets Manager action: each function reads the verification secret during Init.
const SECRET_READ: &str = "secretsmanager:GetSecretValue";

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
            &[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                SECRET_READ,
            ][..],
        ),
        (
            "ListFunction",
            &["dynamodb:GetItem", "dynamodb:Query", SECRET_READ][..],
        ),
        (
            "PatchFunction",
            &[
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                SECRET_READ,
            ][..],
        ),
        (
            "DeleteFunction",
            &[
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:UpdateItem",
                SECRET_READ,
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
                SECRET_READ,
            ][..],
        ),
        (
            "AttemptFunction",
            &[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                SECRET_READ,
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
            if action == SECRET_READ {
                assert_eq!(
                    resources,
                    &vec!["VerificationSecret".to_owned()],
                    "{function}: {action} beyond the one secret"
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

/// Create only writes; its warm-up read during Init is allowed on the warm-up key and nothing
/// else.
#[test]
fn create_may_read_the_warm_up_key_only() {
    let t = template();
    let statements = resource(&t, "CreateFunction")["Properties"]["Policies"][0]["Statement"]
        .as_sequence()
        .unwrap();
    let reads: Vec<&Value> = statements
        .iter()
        .filter(|s| {
            strings(&s["Action"])
                .iter()
                .any(|a| a == "dynamodb:GetItem")
        })
        .collect();
    assert_eq!(reads.len(), 1);
    let condition = &reads[0]["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"];
    assert_eq!(
        strings(condition),
        vec![cc_aws::lambda::WARM_UP_KEY.to_owned()]
    );
    assert_eq!(
        strings(&reads[0]["Action"]),
        vec!["dynamodb:GetItem".to_owned()]
    );
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
        (
            "ListFunction",
            "GET".to_owned(),
            "/api/v1/openapi.json".to_owned(),
        ),
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
    // No route needs an authorizer: the functions check credentials themselves, and the
    // verification and document routes take none.
    assert!(resource(&t, "HttpApi")["Properties"]["Auth"].is_null());
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
    assert_eq!(
        strings(&env["VERIFICATION_SECRET_ARN"]),
        ["VerificationSecret"]
    );
    // cc-events neither reads the secret nor may: the inherited pointer is overridden away.
    let events = &resource(&t, "EventsFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(strings(&events["VERIFICATION_SECRET_ARN"]), [""]);
}

#[test]
fn no_function_environment_holds_a_secret_value() {
    let t = template();
    let mut environments = vec![&t["Globals"]["Function"]["Environment"]["Variables"]];
    for function in FUNCTIONS {
        environments.push(&resource(&t, function)["Properties"]["Environment"]["Variables"]);
    }
    for env in environments {
        let Some(vars) = env.as_mapping() else {
            continue;
        };
        for (name, value) in vars {
            let name = name.as_str().unwrap();
            let value = strings(value).join("");
            assert!(!value.contains("resolve:secretsmanager"), "{name}: {value}");
            assert!(
                !["VERIFICATION_SECRET", "JWT_HS256_SECRET"].contains(&name),
                "{name} is set in plain text"
            );
        }
    }
}

#[test]
fn every_function_logs_json_to_its_own_group() {
    let t = template();
    for function in FUNCTIONS {
        let logging = &resource(&t, function)["Properties"]["LoggingConfig"];
        assert_eq!(logging["LogFormat"].as_str(), Some("JSON"), "{function}");
        let group = strings(&logging["LogGroup"]).join("");
        assert!(group.ends_with("LogGroup"), "{function}: {group}");
    }
}

#[test]
fn the_api_is_throttled_and_tighter_on_the_unauthenticated_routes() {
    let t = template();
    let api = &resource(&t, "HttpApi")["Properties"];
    let default = &api["DefaultRouteSettings"];
    assert_eq!(
        strings(&default["ThrottlingRateLimit"]),
        ["ApiThrottlingRateLimit"]
    );
    assert_eq!(
        strings(&default["ThrottlingBurstLimit"]),
        ["ApiThrottlingBurstLimit"]
    );
    for route in ["verify", "verify/check-code"] {
        let key = format!("POST /api/v1/contact-channels/{route}");
        let settings = &api["RouteSettings"][key.as_str()];
        assert_eq!(
            strings(&settings["ThrottlingRateLimit"]),
            ["VerifyThrottlingRateLimit"]
        );
        assert_eq!(
            strings(&settings["ThrottlingBurstLimit"]),
            ["VerifyThrottlingBurstLimit"]
        );
    }
    let default_of = |p: &str| t["Parameters"][p]["Default"].as_u64().unwrap();
    assert!(default_of("VerifyThrottlingRateLimit") < default_of("ApiThrottlingRateLimit"));
    assert!(default_of("VerifyThrottlingBurstLimit") < default_of("ApiThrottlingBurstLimit"));
    let reserved = strings(&t["Globals"]["Function"]["ReservedConcurrentExecutions"]);
    assert!(
        reserved.contains(&"ReservedConcurrency".to_owned()),
        "{reserved:?}"
    );
}

/// The alarms of the template, by logical id.
fn alarms(t: &Value) -> BTreeMap<String, &Value> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|(k, r)| (k.as_str().unwrap().to_owned(), r))
        .collect()
}

#[test]
fn alarms_watch_every_function_and_notify_the_optional_topic() {
    let t = template();
    let alarms = alarms(&t);
    for function in FUNCTIONS {
        for metric in ["Errors", "Throttles"] {
            let watching = alarms.values().any(|a| {
                let p = &a["Properties"];
                p["Namespace"].as_str() == Some("AWS/Lambda")
                    && p["MetricName"].as_str() == Some(metric)
                    && strings(&p["Dimensions"][0]["Value"]) == [function]
            });
            assert!(watching, "no {metric} alarm on {function}");
        }
    }
    for (name, alarm) in &alarms {
        let actions = strings(&alarm["Properties"]["AlarmActions"]);
        assert!(
            actions.contains(&"HasAlarmTopic".to_owned())
                && actions.contains(&"AlarmTopicArn".to_owned()),
            "{name}: {actions:?}"
        );
    }
    for expected in [
        "ApiServerErrorRateAlarm",
        "ApiLatencyP99Alarm",
        "DynamoDbThrottledAlarm",
        "DynamoDbSystemErrorsAlarm",
        "SesBounceRateAlarm",
        "SesComplaintRateAlarm",
    ] {
        assert!(alarms.contains_key(expected), "{expected}");
    }
    for ses in ["SesBounceRateAlarm", "SesComplaintRateAlarm"] {
        assert_eq!(
            alarms[ses]["Condition"].as_str(),
            Some("HasConfigurationSet")
        );
    }
    assert_eq!(
        resource(&t, "Dashboard")["Type"].as_str(),
        Some("AWS::CloudWatch::Dashboard")
    );
}

#[test]
fn the_mail_alarm_watches_the_metric_the_send_function_emits() {
    use cc_aws::lambda::Function;
    let t = template();
    let p = &alarms(&t)["MailDeliveryFailedAlarm"]["Properties"];
    assert_eq!(
        p["Namespace"].as_str(),
        Some(contact_channels::telemetry::NAMESPACE)
    );
    assert_eq!(
        p["MetricName"].as_str(),
        Some(contact_channels::telemetry::Metric::MailDeliveryFailed.name())
    );
    let dimensions: BTreeMap<String, String> = p["Dimensions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["Name"].as_str().unwrap().to_owned(),
                d["Value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let send = Function::SendVerification;
    assert_eq!(dimensions["Function"], send.name());
    let route = send.routes()[0].name();
    assert_eq!(dimensions["Route"], route);
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
