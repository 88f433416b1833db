//! The route table (docs/api.md §5) and the axum router built from it. Every function gets the whole
//! table, so that an unknown path is `404` and a known path with another method is `405` with
//! the path's `Allow` everywhere; a route that another function serves answers `404` here (API
//! Gateway never sends it to this one).

use std::sync::Arc;
use std::time::Instant;

use ::http::Method;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};

use super::MAX_BODY_BYTES;
use super::handlers;
use crate::domain::ChannelId;
use crate::error::ApiError;
use crate::service::Service;
use crate::store::ChannelStore;
use crate::telemetry;

/// Every API route; each Lambda function serves a subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // Each variant is the endpoint of docs/api.md §5 it is named after.
pub enum Route {
    Create,
    List,
    Read,
    Update,
    Delete,
    SendVerification,
    AttemptVerification,
    VerifyLink,
    CheckLink,
    /// `GET /api/v1/openapi.json`: the committed OpenAPI document.
    OpenApi,
}

const BASE: &str = "/api/v1/contact-channels";
const CHANNEL: &str = "/api/v1/contact-channels/{user_id}/{contact_channel_id}";
const OPENAPI: &str = "/api/v1/openapi.json";

impl Route {
    /// All routes, for a process that serves the whole API (the local server).
    pub const ALL: &'static [Route] = &[
        Route::Create,
        Route::List,
        Route::Read,
        Route::Update,
        Route::Delete,
        Route::SendVerification,
        Route::AttemptVerification,
        Route::VerifyLink,
        Route::CheckLink,
        Route::OpenApi,
    ];

    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Route::Create => "create",
            Route::List => "list",
            Route::Read => "read",
            Route::Update => "update",
            Route::Delete => "delete",
            Route::SendVerification => "send-verification",
            Route::AttemptVerification => "attempt-verification",
            Route::VerifyLink => "verify",
            Route::CheckLink => "check-code",
            Route::OpenApi => "openapi",
        }
    }

    /// The path template (axum syntax) and method of the route.
    pub fn path_and_method(self) -> (String, Method) {
        match self {
            Route::Create => (BASE.into(), Method::POST),
            Route::List => (BASE.into(), Method::GET),
            Route::Read => (CHANNEL.into(), Method::GET),
            Route::Update => (CHANNEL.into(), Method::PATCH),
            Route::Delete => (CHANNEL.into(), Method::DELETE),
            Route::SendVerification => (format!("{CHANNEL}/send-verification-code"), Method::POST),
            Route::AttemptVerification => (format!("{CHANNEL}/attempt-verification"), Method::POST),
            Route::VerifyLink => (format!("{BASE}/verify"), Method::POST),
            Route::CheckLink => (format!("{BASE}/verify/check-code"), Method::POST),
            Route::OpenApi => (OPENAPI.into(), Method::GET),
        }
    }

    fn elsewhere<S: ChannelStore + ?Sized + 'static>(self) -> MethodRouter<Arc<Service<S>>> {
        let (_, method) = self.path_and_method();
        match MethodFilter::try_from(method) {
            Ok(filter) => on(filter, || async { ApiError::RouteNotFound }),
            Err(_) => MethodRouter::new(),
        }
    }
}

/// A route and the handler that serves it, over a service on store `S`. A binary names the
/// endpoints it serves with the constants of `Endpoint` ([`Endpoint::CREATE`] …), so that it
/// links only their handlers and the service and store code they call: a `match` from
/// [`Route`] to handler would put every handler (and the OpenAPI document) into every
/// function.
pub struct Endpoint<S: ?Sized + 'static = dyn ChannelStore> {
    /// The route served.
    pub route: Route,
    handler: fn(MethodFilter) -> MethodRouter<Arc<Service<S>>>,
}

// By hand: derived impls would require `S: Clone`, which no store (nor `dyn ChannelStore`) is.
impl<S: ?Sized> Clone for Endpoint<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: ?Sized> Copy for Endpoint<S> {}

impl<S: ?Sized> std::fmt::Debug for Endpoint<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Endpoint").field(&self.route).finish()
    }
}

impl<S: ChannelStore + ?Sized + 'static> Endpoint<S> {
    fn methods(self) -> MethodRouter<Arc<Service<S>>> {
        let (_, method) = self.route.path_and_method();
        match MethodFilter::try_from(method) {
            Ok(filter) => (self.handler)(filter),
            Err(_) => MethodRouter::new(),
        }
    }
}

/// One constant per route, [`ALL`](Endpoint::ALL) for a process that serves the whole API,
/// and [`of`](Endpoint::of) for tests that serve a function's routes.
macro_rules! endpoints {
    ($($name:ident = $route:ident => $handler:expr;)*) => {
        impl<S: ChannelStore + ?Sized + 'static> Endpoint<S> {
            $(
                #[doc = concat!("`", stringify!($route), "`, served by `", stringify!($handler), "`.")]
                pub const $name: Self = Endpoint {
                    route: Route::$route,
                    handler: |f| on(f, $handler),
                };
            )*

            /// Every endpoint, in [`Route::ALL`] order (the local server; it links every
            /// handler).
            pub const ALL: &'static [Self] = &[$(Self::$name),*];

            /// The endpoints of `routes` (tests that serve a function's routes; links every
            /// handler).
            pub fn of(routes: &[Route]) -> Vec<Self> {
                Self::ALL
                    .iter()
                    .filter(|e| routes.contains(&e.route))
                    .copied()
                    .collect()
            }
        }
    };
}

endpoints! {
    CREATE = Create => handlers::create::<S>;
    LIST = List => handlers::list::<S>;
    READ = Read => handlers::read::<S>;
    UPDATE = Update => handlers::update::<S>;
    DELETE = Delete => handlers::delete::<S>;
    SEND_VERIFICATION = SendVerification => handlers::send_verification::<S>;
    ATTEMPT_VERIFICATION = AttemptVerification => handlers::attempt_verification::<S>;
    VERIFY_LINK = VerifyLink => handlers::verify_link::<S>;
    CHECK_LINK = CheckLink => handlers::check_link::<S>;
    OPENAPI = OpenApi => handlers::openapi;
}

/// The methods a path accepts, for `405` and its `Allow` header.
fn allowed_on(path: &str) -> &'static [&'static str] {
    match path {
        BASE => &["GET", "POST"],
        CHANNEL => &["GET", "PATCH", "DELETE"],
        OPENAPI => &["GET"],
        _ => &["POST"],
    }
}

/// The router of a process that serves `serves`: the whole table, the contract's JSON errors
/// for everything the framework would answer itself, the body limit, and one log line per
/// request (method, route, status, time; never a body, code, token or address).
pub fn router<S: ChannelStore + ?Sized + 'static>(
    service: Arc<Service<S>>,
    serves: &[Endpoint<S>],
) -> Router {
    let mut paths: Vec<(String, MethodRouter<Arc<Service<S>>>)> = Vec::new();
    for &route in Route::ALL {
        let (path, _) = route.path_and_method();
        let endpoint = match serves.iter().find(|e| e.route == route) {
            Some(served) => served.methods(),
            None => route.elsewhere(),
        };
        match paths.iter_mut().find(|(p, _)| *p == path) {
            Some((_, methods)) => *methods = std::mem::take(methods).merge(endpoint),
            None => paths.push((path, endpoint)),
        }
    }
    let mut router = Router::new();
    for (path, methods) in paths {
        let allow = allowed_on(&path);
        // HEAD is answered like any other method the path does not accept (axum would
        // otherwise answer it with the GET handler).
        let methods = methods
            .on(MethodFilter::HEAD, move || async move {
                ApiError::MethodNotAllowed(allow)
            })
            .fallback(move || async move { ApiError::MethodNotAllowed(allow) });
        router = router.route(&path, methods);
    }
    router
        .fallback(|| async { ApiError::RouteNotFound })
        .layer(middleware::from_fn(read_body_and_log))
        .with_state(service)
}

/// Reads the body within the contract's limit before anything else looks at the request
/// (`413` comes first, docs/api.md §1), and runs it as one request for telemetry: its log lines carry
/// the platform's ids and the route, and it ends with one line (method, route, status, latency,
/// error code; never a body, code, token or address) and its metrics.
async fn read_body_and_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| route_name(p.as_str(), &method))
        .unwrap_or("unmatched");
    let ids = request
        .extensions()
        .get::<telemetry::InvocationIds>()
        .cloned()
        .unwrap_or_default();
    let (mut parts, body) = request.into_parts();
    let channel = channel_in_path(&mut parts).await;
    telemetry::scoped(ids, route, channel, async move {
        let response = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(bytes) => {
                next.run(Request::from_parts(parts, Body::from(bytes)))
                    .await
            }
            Err(e) if is_length_limit(&e) => ApiError::PayloadTooLarge.into_response(),
            Err(_) => ApiError::schema("The request body could not be read.").into_response(),
        };
        let code = response
            .headers()
            .get("x-known-error")
            .and_then(|v| v.to_str().ok());
        telemetry::request_done(
            method.as_str(),
            response.status().as_u16(),
            code,
            started.elapsed(),
        );
        response
    })
    .await
}

/// The channel id a path names, so that every line of a request on one channel says which
/// (an id, never the address); `None` for other paths and malformed ids.
async fn channel_in_path(parts: &mut ::http::request::Parts) -> Option<String> {
    let params = RawPathParams::from_request_parts(parts, &()).await.ok()?;
    let (_, raw) = params.iter().find(|(k, _)| *k == "contact_channel_id")?;
    ChannelId::parse(raw).ok().map(|id| id.to_string())
}

/// The name of the route a matched path and method stand for, for logs and metrics.
fn route_name(path: &str, method: &Method) -> Option<&'static str> {
    Route::ALL
        .iter()
        .find(|r| {
            let (p, m) = r.path_and_method();
            p == path && m == *method
        })
        .map(|r| r.name())
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}
