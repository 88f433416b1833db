//! The OpenAPI 3.1 document of the API, generated from what the server is made of: the route
//! table ([`Route`]), the request and response types (their `ToSchema` derives), the errors
//! each route can answer ([`ApiError`]: status, code, details) and the credentials it takes.
//! Only the generator (`make openapi`) and the tests build it (feature `openapi`); the server
//! serves the committed `openapi.json`, which a test keeps equal to [`to_json`].

use std::borrow::Cow;

use serde_json::{Value, json};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder,
    PathsBuilder, Ref, RefOr, Required, Schema,
};
use utoipa::{PartialSchema, ToSchema};

use super::MAX_BODY_BYTES;
use super::requests::{CodeRequest, CreateRequest, SendRequest, TokenRequest, UpdateRequest};
use super::responses::{ChannelBody, CheckBody, ErrorBody, ListBody, SentBody, SuccessBody};
use super::router::Route;
use crate::domain::{EmailAddress, USER_REF_PATTERN, UserRef};
use crate::error::{Action, ApiError};

const JSON: &str = "application/json";
const BEARER: &str = "bearerAuth";
const SERVER_KEY: &str = "serverKey";

impl PartialSchema for EmailAddress {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .max_length(Some(254))
            .examples(["johndoe@example.com"])
            .description(Some(
                "An email address: an ASCII dot-atom local part of at most 64 octets, `@`, a \
                 domain of two labels or more (internationalized domains allowed); at most 254 \
                 octets. Stored trimmed, lower-cased, with its domain in ASCII (punycode) form.",
            ))
            .into()
    }
}

impl ToSchema for EmailAddress {}

impl PartialSchema for UserRef {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(128))
            .pattern(Some(USER_REF_PATTERN))
            .examples(["user_2f9"])
            .description(Some(
                "The app's user id (the `sub` of a client's token): 1-128 characters from \
                 `A-Z a-z 0-9 . _ - : | @`, `verify` excepted; or `me`, the calling client's own \
                 user (a server using `me` gets `400 CANNOT_GET_OWN_USER_WITHOUT_USER`).",
            ))
            .into()
    }
}

impl ToSchema for UserRef {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("UserId")
    }
}

/// What a caller should do about an error: the line of the response description for its code.
fn advice(error: &ApiError) -> &'static str {
    use ApiError::*;
    match error {
        PayloadTooLarge => "The body is over 16 KiB.",
        // The local server's connection guard answers these before any route is matched.
        RequestTimeout => "The request head or its declared body did not arrive in time.",
        UriTooLong => "The request line is over the server's limit.",
        HeadersTooLarge => "The request head has too many or too large headers.",
        MalformedRequest => "The bytes are not an HTTP/1 request.",
        RouteNotFound => "The path names no route (an empty segment, for example).",
        MethodNotAllowed(_) => "The path does not take this method; `allow` lists those it does.",
        Unauthenticated => "No credentials: send `Authorization: Bearer <JWT>` or `x-server-key`.",
        InvalidAccessToken => {
            "The token is malformed, expired, wrongly signed or of another issuer or audience, \
             or its `sub` is not a valid user id: get a new token."
        }
        InvalidServerKey => {
            "The `x-server-key` matches no configured digest (a wrong key is never retried as a \
             token)."
        }
        Schema(_) => "A path, query or body value is malformed; `error` names it. Fix the request.",
        CannotGetOwnUserWithoutUser => "`me` needs a client token: a server names the user.",
        Forbidden(_) | ServerOnlyField => {
            "A client named another user than its own, or set the server-only `is_verified`."
        }
        ChannelNotFound => {
            "The user has no channel with this id (an id that is not a UUID included)."
        }
        ChannelAlreadyExists(_) => {
            "The user already has a channel with this value; `details.contact_channel_id` is \
             its id (a create retried after a timeout can use it)."
        }
        UsedForAuthBySomeoneElse => {
            "Another user's channel with this value is used for auth; create it with \
             `used_for_auth: false`, or sign that user in instead."
        }
        TooManyChannels => "The user has `MAX_CHANNELS_PER_USER` channels: delete one first.",
        EmailAlreadyVerified => "The channel is verified already: nothing to do.",
        RedirectUrlNotWhitelisted => {
            "The origin of `callback_url` is not in `ALLOWED_CALLBACK_URLS`, or the URL has \
             user-info."
        }
        RateLimited(_) => {
            "This address was mailed less than `SEND_COOLDOWN_SECONDS` ago or has had \
             `MAX_SENDS_PER_DAY` mails in 24 h: wait `retry-after` seconds. The outstanding code \
             or link still works."
        }
        EmailDeliveryFailed => {
            "The mail service refused the mail; nothing changed (a previous code still works, no \
             limit was used up). Retry later or check the address."
        }
        VerificationCodeNotFound => {
            "No such code or token is outstanding (unknown, replaced by a newer send, used up, \
             or its channel changed or was deleted): send a new one."
        }
        VerificationCodeExpired => "The code or link ran out: send a new one.",
        VerificationCodeAlreadyUsed => "This link already verified its channel: nothing to do.",
        VerificationCodeMaxAttemptsReached => {
            "The code is burned after too many wrong guesses (even the right code now fails): \
             send a new one."
        }
        VerificationCodeIncorrect { .. } => {
            "Wrong code; `details.attempts_remaining` guesses are left."
        }
        Internal => "An unexpected failure; retry later.",
    }
}

/// How a route is described: everything that is not already in the route table or the types.
struct Spec {
    operation_id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: &'static str,
    authenticated: bool,
    parameters: Parameters,
    body: Option<(RefOr<Schema>, Required)>,
    ok: (u16, &'static str, RefOr<Schema>),
    errors: Vec<ApiError>,
}

enum Parameters {
    None,
    Channel,
    ListQuery,
}

fn schema_ref<T: ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

/// The errors of a route, in the contract's order of checks; each becomes its status's
/// response, its code an enum value of that response's `code` and `x-known-error`.
fn errors(route: Route) -> Vec<ApiError> {
    use ApiError::*;
    let auth = [Unauthenticated, InvalidAccessToken, InvalidServerKey];
    let head = |action| {
        let mut e = vec![PayloadTooLarge];
        e.extend(auth.clone());
        e.extend([
            Schema(String::new()),
            CannotGetOwnUserWithoutUser,
            Forbidden(action),
        ]);
        e
    };
    let channel = |action| {
        let mut e = vec![RouteNotFound];
        e.extend(head(action));
        e.push(ChannelNotFound);
        e
    };
    let link = || {
        vec![
            PayloadTooLarge,
            Schema(String::new()),
            VerificationCodeNotFound,
            VerificationCodeExpired,
            VerificationCodeAlreadyUsed,
            Internal,
        ]
    };
    let mut e = match route {
        Route::Create => {
            let mut e = head(Action::Create);
            e.extend([
                ServerOnlyField,
                ChannelAlreadyExists(None),
                UsedForAuthBySomeoneElse,
                TooManyChannels,
            ]);
            e
        }
        Route::List => head(Action::List),
        Route::Read => channel(Action::Read),
        Route::Update => {
            let mut e = channel(Action::Update);
            e.extend([
                ServerOnlyField,
                ChannelAlreadyExists(None),
                UsedForAuthBySomeoneElse,
            ]);
            e
        }
        Route::Delete => channel(Action::Delete),
        Route::SendVerification => {
            let mut e = channel(Action::Verify);
            e.extend([
                EmailAlreadyVerified,
                RedirectUrlNotWhitelisted,
                RateLimited(1),
                EmailDeliveryFailed,
            ]);
            e
        }
        Route::AttemptVerification => {
            let mut e = channel(Action::Verify);
            e.extend([
                EmailAlreadyVerified,
                VerificationCodeNotFound,
                VerificationCodeMaxAttemptsReached,
                VerificationCodeExpired,
                VerificationCodeIncorrect {
                    attempts_remaining: 1,
                },
            ]);
            e
        }
        Route::VerifyLink | Route::CheckLink => return link(),
        Route::OpenApi => return vec![PayloadTooLarge],
    };
    e.push(Internal);
    e
}

fn spec(route: Route) -> Spec {
    let channels = "contact channels";
    let verification = "verification";
    let (operation_id, tag, summary, description, parameters, body, ok) = match route {
        Route::Create => (
            "createContactChannel",
            channels,
            "Create a channel",
            "Adds an email address to a user. Making it primary demotes the user's previous \
             primary in the same step.",
            Parameters::None,
            Some((schema_ref::<CreateRequest>(), Required::True)),
            (201, "The new channel.", schema_ref::<ChannelBody>()),
        ),
        Route::List => (
            "listContactChannels",
            channels,
            "List a user's channels",
            "All channels of one user, oldest first (never paginated).",
            Parameters::ListQuery,
            None,
            (200, "The user's channels.", schema_ref::<ListBody>()),
        ),
        Route::Read => (
            "readContactChannel",
            channels,
            "Read a channel",
            "One channel of a user.",
            Parameters::Channel,
            None,
            (200, "The channel.", schema_ref::<ChannelBody>()),
        ),
        Route::Update => (
            "updateContactChannel",
            channels,
            "Update a channel",
            "Changes the fields given. A new value makes the channel unverified and voids its \
             outstanding code or link; the same value changes nothing.",
            Parameters::Channel,
            Some((schema_ref::<UpdateRequest>(), Required::False)),
            (200, "The channel as updated.", schema_ref::<ChannelBody>()),
        ),
        Route::Delete => (
            "deleteContactChannel",
            channels,
            "Delete a channel",
            "Removes the channel with its outstanding code or link. Deleting the primary leaves \
             the user with none.",
            Parameters::Channel,
            None,
            (200, "Deleted.", schema_ref::<SuccessBody>()),
        ),
        Route::SendVerification => (
            "sendVerificationCode",
            verification,
            "Mail a verification link or code",
            "Mails a link (`email_link`: `callback_url` with `code=<token>` added, valid \
             `LINK_TTL_SECONDS`) or a 6-digit code (`email_code`, valid `CODE_TTL_SECONDS`). \
             Replaces the channel's outstanding code or link once the mail is accepted.",
            Parameters::Channel,
            Some((send_request_schema(), Required::False)),
            (
                200,
                "The mail was accepted by the mail service.",
                schema_ref::<SentBody>(),
            ),
        ),
        Route::AttemptVerification => (
            "attemptVerification",
            verification,
            "Verify by code",
            "Checks the 6-digit code mailed by `email_code`. A code allows `MAX_CODE_ATTEMPTS` \
             guesses in all; the last wrong one burns it.",
            Parameters::Channel,
            Some((schema_ref::<CodeRequest>(), Required::True)),
            (
                200,
                "Verified: the channel, `is_verified: true`.",
                schema_ref::<ChannelBody>(),
            ),
        ),
        Route::VerifyLink => (
            "verifyLink",
            verification,
            "Verify by link token",
            "Verifies the channel of a link token (the `code` query parameter of the mailed \
             link) and uses the token up. No credentials: the token is one.",
            Parameters::None,
            Some((schema_ref::<TokenRequest>(), Required::True)),
            (200, "Verified.", schema_ref::<SuccessBody>()),
        ),
        Route::CheckLink => (
            "checkLink",
            verification,
            "Check a link token",
            "Answers whether a link token would verify, without using it up. Same errors as \
             `verifyLink`.",
            Parameters::None,
            Some((schema_ref::<TokenRequest>(), Required::True)),
            (
                200,
                "The token is valid and unused.",
                schema_ref::<CheckBody>(),
            ),
        ),
        Route::OpenApi => (
            "openApiDocument",
            "meta",
            "This document",
            "The OpenAPI 3.1 document of the API, generated from the types the server uses.",
            Parameters::None,
            None,
            (
                200,
                "The document.",
                ObjectBuilder::new().schema_type(Type::Object).into(),
            ),
        ),
    };
    Spec {
        operation_id,
        tag,
        summary,
        description,
        authenticated: !matches!(route, Route::VerifyLink | Route::CheckLink | Route::OpenApi),
        parameters,
        body,
        ok,
        errors: errors(route),
    }
}

/// `SendRequest` with the rule its conversion enforces: `callback_url` is required unless the
/// strategy is `email_code`.
fn send_request_schema() -> RefOr<Schema> {
    let link_needs_url = AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .property(
                    "callback_url",
                    ObjectBuilder::new().schema_type(Type::String),
                )
                .required("callback_url"),
        )
        .item(
            ObjectBuilder::new()
                .property(
                    "strategy",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["email_code"])),
                )
                .required("strategy"),
        );
    AllOfBuilder::new()
        .item(schema_ref::<SendRequest>())
        .item(link_needs_url)
        .description(Some(
            "`callback_url` is required unless `strategy` is `email_code`.",
        ))
        .into()
}

fn parameters(kind: &Parameters) -> Vec<utoipa::openapi::path::Parameter> {
    let user = |place, description: &str| {
        ParameterBuilder::new()
            .name("user_id")
            .parameter_in(place)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(schema_ref::<UserRef>()))
            .build()
    };
    match kind {
        Parameters::None => Vec::new(),
        Parameters::Channel => vec![
            user(
                ParameterIn::Path,
                "The channel's user, or `me` (percent-encode `|` as `%7C`).",
            ),
            ParameterBuilder::new()
                .name("contact_channel_id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(
                    "The channel's id. One that is not a UUID is `404 CONTACT_CHANNEL_NOT_FOUND`.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                        .examples(["b3d396b8-c574-4c80-97b3-50031675ceb2"]),
                ))
                .build(),
        ],
        Parameters::ListQuery => vec![
            user(
                ParameterIn::Query,
                "Whose channels, or `me`. Required, for servers too.",
            ),
            ParameterBuilder::new()
                .name("contact_channel_id")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(
                    "Only this channel: 0 or 1 item (a value that is not a UUID matches none).",
                ))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        ],
    }
}

/// One response per error status, its codes in the order of checks.
fn error_responses(errors: &[ApiError]) -> Vec<(String, utoipa::openapi::response::Response)> {
    let mut statuses: Vec<u16> = errors.iter().map(|e| e.status().as_u16()).collect();
    statuses.sort_unstable();
    statuses.dedup();
    statuses
        .into_iter()
        .map(|status| {
            let mut codes: Vec<&'static str> = Vec::new();
            let mut lines: Vec<String> = Vec::new();
            for e in errors.iter().filter(|e| e.status().as_u16() == status) {
                if !codes.contains(&e.code()) {
                    codes.push(e.code());
                    lines.push(format!("`{}`: {}", e.code(), advice(e)));
                }
            }
            let code_enum = || {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(codes.clone()))
            };
            let body = AllOfBuilder::new()
                .item(schema_ref::<ErrorBody>())
                .item(ObjectBuilder::new().property("code", code_enum()));
            let mut response = ResponseBuilder::new()
                .description(lines.join("\n\n"))
                .content(JSON, ContentBuilder::new().schema(Some(body)).build())
                .header(
                    "x-known-error",
                    HeaderBuilder::new()
                        .schema(code_enum())
                        .description(Some("The body's `code`."))
                        .build(),
                );
            if errors
                .iter()
                .any(|e| matches!(e, ApiError::RateLimited(_)) && e.status().as_u16() == status)
            {
                response = response.header(
                    "retry-after",
                    HeaderBuilder::new()
                        .schema(
                            ObjectBuilder::new()
                                .schema_type(Type::Integer)
                                .minimum(Some(1)),
                        )
                        .description(Some("Seconds to wait before sending again."))
                        .build(),
                );
            }
            (status.to_string(), response.build())
        })
        .collect()
}

/// Where the channel a create answered can be used next (for tools that follow links, such as
/// stateful fuzzers and clients generated from the document).
fn channel_links() -> Vec<(&'static str, utoipa::openapi::link::Link)> {
    [
        ("read", "readContactChannel"),
        ("update", "updateContactChannel"),
        ("delete", "deleteContactChannel"),
        ("sendVerificationCode", "sendVerificationCode"),
        ("attemptVerification", "attemptVerification"),
    ]
    .into_iter()
    .map(|(name, operation)| {
        let link = LinkBuilder::new()
            .operation_id(operation)
            .parameter("user_id", "$response.body#/user_id")
            .parameter("contact_channel_id", "$response.body#/id")
            .build();
        (name, link)
    })
    .collect()
}

fn operation(route: Route) -> (String, HttpMethod, utoipa::openapi::path::Operation) {
    let spec = spec(route);
    let (path, method) = route.path_and_method();
    let method = match method.as_str() {
        "POST" => HttpMethod::Post,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    };
    let (status, description, schema) = spec.ok;
    let mut ok = ResponseBuilder::new()
        .description(description)
        .content(JSON, ContentBuilder::new().schema(Some(schema)).build());
    if route == Route::Create {
        for (name, link) in channel_links() {
            ok = ok.link(name, link);
        }
    }
    let mut op = OperationBuilder::new()
        .operation_id(Some(spec.operation_id))
        .tag(spec.tag)
        .summary(Some(spec.summary))
        .description(Some(spec.description))
        .parameters(Some(parameters(&spec.parameters)))
        .response(status.to_string(), ok.build());
    if let Some((schema, required)) = spec.body {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(required))
                .description(Some(format!(
                    "JSON object, at most {} KiB. An empty body counts as `{{}}`; `null` counts \
                     as absent for an optional field.",
                    MAX_BODY_BYTES / 1024
                )))
                .content(JSON, ContentBuilder::new().schema(Some(schema)).build())
                .build(),
        ));
    }
    for (status, response) in error_responses(&spec.errors) {
        op = op.response(status, response);
    }
    op = if spec.authenticated {
        op.securities(Some([
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
            SecurityRequirement::new(SERVER_KEY, Vec::<String>::new()),
        ]))
    } else {
        op.securities(Some(Vec::<SecurityRequirement>::new()))
    };
    (path, method, op.build())
}

/// The document, as a utoipa value.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    let mut items: Vec<(String, PathItem)> = Vec::new();
    for &route in Route::ALL {
        let (path, method, op) = operation(route);
        match items.iter_mut().find(|(p, _)| *p == path) {
            Some((_, item)) => item.merge_operations(PathItem::new(method, op)),
            None => items.push((path, PathItem::new(method, op))),
        }
    }
    for (path, item) in items {
        paths = paths.path(path, item);
    }
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    collect::<CreateRequest>(&mut schemas);
    collect::<UpdateRequest>(&mut schemas);
    collect::<SendRequest>(&mut schemas);
    collect::<CodeRequest>(&mut schemas);
    collect::<TokenRequest>(&mut schemas);
    collect::<ChannelBody>(&mut schemas);
    collect::<ListBody>(&mut schemas);
    collect::<SuccessBody>(&mut schemas);
    collect::<SentBody>(&mut schemas);
    collect::<CheckBody>(&mut schemas);
    collect::<ErrorBody>(&mut schemas);
    let mut components = ComponentsBuilder::new()
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A client (an end user's app): `Authorization: Bearer <JWT>`, checked \
                         by signature (RS256/ES256 from `JWT_JWKS_URL`, or HS256), `exp`, `nbf` \
                         and, when configured, `iss` and `aud`. Its `sub` is the user id; it acts \
                         on that user only.",
                    ))
                    .build(),
            ),
        )
        .security_scheme(
            SERVER_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-server-key",
                "A server (the app's trusted backend): acts on any user. The key's SHA-256 \
                 must be one of `SERVER_KEY_SHA256`. When this header is present it decides: \
                 a wrong key is `401 INVALID_SERVER_KEY`, never a fall-back to a token.",
            ))),
        );
    for (name, schema) in schemas {
        components = components.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Contact Channels API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Users' email addresses (contact channels) and proof that each user owns \
                     them, by a mailed link or a 6-digit code. Every error is JSON \
                     `{code, error, details?}` with the header `x-known-error: <code>`. \
                     Checks run in this order: 413, routing (404 `NOT_FOUND`, 405), 401, \
                     400 `SCHEMA_ERROR`, 400 `CANNOT_GET_OWN_USER_WITHOUT_USER`, 403, \
                     404 `CONTACT_CHANNEL_NOT_FOUND`, then each operation's own errors in the \
                     order listed. Unknown query parameters are ignored.",
                ))
                .license(Some(LicenseBuilder::new().name("MIT").build())),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .tags(Some([
            TagBuilder::new()
                .name("contact channels")
                .description(Some("A user's email addresses."))
                .build(),
            TagBuilder::new()
                .name("verification")
                .description(Some("Proving that a user owns an address."))
                .build(),
            TagBuilder::new()
                .name("meta")
                .description(Some("The API describing itself."))
                .build(),
        ]))
        .build()
}

/// Adds `T` and every schema it refers to, once each.
fn collect<T: ToSchema>(into: &mut Vec<(String, RefOr<Schema>)>) {
    let mut found = vec![(T::name().into_owned(), T::schema())];
    T::schemas(&mut found);
    for (name, schema) in found {
        if !into.iter().any(|(n, _)| *n == name) {
            into.push((name, schema));
        }
    }
}

/// The document as committed in `openapi.json`: pretty JSON and a final newline.
pub fn to_json() -> String {
    let mut value = match serde_json::to_value(document()) {
        Ok(value) => value,
        Err(e) => json!({ "error": e.to_string() }),
    };
    if let Some(paths) = value.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in item.values_mut() {
                if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                    responses.values_mut().for_each(complete_response);
                }
            }
        }
    }
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// What utoipa 5 cannot say of a response: its headers are required (every error carries
/// `x-known-error`, every 429 `retry-after`; its header type has no `required`), and a link
/// names its operation `operationId` (utoipa 5 writes the Rust field name).
fn complete_response(response: &mut Value) {
    if let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) {
        for header in headers.values_mut().filter_map(Value::as_object_mut) {
            header.insert("required".into(), Value::Bool(true));
        }
    }
    if let Some(links) = response.get_mut("links").and_then(Value::as_object_mut) {
        for link in links.values_mut().filter_map(Value::as_object_mut) {
            if let Some(id) = link.remove("operation_id") {
                link.insert("operationId".into(), id);
            }
        }
    }
}
