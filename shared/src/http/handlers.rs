//! One thin handler per route: extractors in the contract's order of checks (caller, path and
//! query, body), one service call, one rendered answer.

use std::sync::Arc;

use ::http::{StatusCode, header};
use axum::Json;
use axum::extract::State;

use super::extract::Body;
use super::requests::{
    CodeRequest, CreateRequest, EmptyRequest, SendRequest, TokenRequest, UpdateRequest,
};
use super::responses::{ChannelBody, CheckBody, ListBody, SentBody, SuccessBody};
use crate::auth::Caller;
use crate::domain::channel::StoredChannel;
use crate::domain::now_millis;
use crate::error::ApiError;
use crate::service::{ChannelRef, ListChannels, Service};
use crate::store::ChannelStore;

type Answer<T> = Result<Json<T>, ApiError>;

fn render<S: ChannelStore + ?Sized>(service: &Service<S>, channel: &StoredChannel) -> ChannelBody {
    ChannelBody::render(
        channel,
        now_millis(),
        service.config().limits.max_code_attempts,
    )
}

const SUCCESS: SuccessBody = SuccessBody { success: true };

pub(super) async fn create<S: ChannelStore + ?Sized>(
    State(service): State<Arc<Service<S>>>,
    caller: Caller,
    Body(request): Body<CreateRequest>,
) -> Result<(StatusCode, Json<ChannelBody>), ApiError> {
    let created = service.create(&caller, request.into()).await?;
    Ok((StatusCode::CREATED, Json(render(&service, &created))))
}

pub(super) async fn list<S: ChannelStore + ?Sized>(
    State(service): State<Arc<Service<S>>>,
    caller: Caller,
    query: ListChannels,
) -> Answer<ListBody> {
    let channels = service.list(&caller, query).await?;
    let items = channels.iter().map(|c| render(&service, c)).collect();
    Ok(Json(ListBody {
        items,
        is_paginated: false,
    }))
}

pub(super) async fn read<S: ChannelStore + ?Sized>(
    State(service): State<Arc<Service<S>>>,
    caller: Caller,
    at: ChannelRef,
) -> Answer<ChannelBody> {
    let channel = service.read(&caller, at).await?;
    Ok(Json(render(&service, &channel)))
}

pub(super) async fn update<S: ChannelStore + ?Sized>(
    State(service): State<Arc<Service<S>>>,
    caller: Caller,
    at: ChannelRef,
    Body(request): Body<UpdateRequest>,
) -> Answer<ChannelBody> {
    let channel = service.update(&caller, at, request.into()).await?;
    Ok(Json(render(&service, &channel)))
}

pub(super) async fn delete<S: ChannelStore + ?Sized>(
    State(service): State<Arc<Service<S>>>,
    caller: Caller,
    at: ChannelRef,
    Body(EmptyRequest {}): Body<EmptyRequest>,
) -> Answer<SuccessBody> {
    service.delete(&caller, at).await?;
    Ok(Json(SUCCESS))
}

pub(super) async fn send_verification<S: ChannelStore + ?Sized>(
    State(service): State<Arc<Service<S>>>,
    caller: Caller,
    at: ChannelRef,
    Body(request): Body<SendRequest>,
) -> Answer<SentBody> {
    let command = request.try_into()?;
    let sent = service.send_verification(&caller, at, command).await?;
    Ok(Json(sent.into()))
}

pub(super) async fn attempt_verification<S: ChannelStore + ?Sized>(
    State(service): State<Arc<Service<S>>>,
    caller: Caller,
    at: ChannelRef,
    Body(request): Body<CodeRequest>,
) -> Answer<ChannelBody> {
    let channel = service.attempt(&caller, at, request.try_into()?).await?;
    Ok(Json(render(&service, &channel)))
}

pub(super) async fn verify_link<S: ChannelStore + ?Sized>(
    State(service): State<Arc<Service<S>>>,
    Body(request): Body<TokenRequest>,
) -> Answer<SuccessBody> {
    service.verify_link(&request.code).await?;
    Ok(Json(SUCCESS))
}

pub(super) async fn check_link<S: ChannelStore + ?Sized>(
    State(service): State<Arc<Service<S>>>,
    Body(request): Body<TokenRequest>,
) -> Answer<CheckBody> {
    service.check_link(&request.code).await?;
    Ok(Json(CheckBody {
        is_code_valid: true,
    }))
}

/// The OpenAPI document as committed at the repository root: `make openapi` writes it from the
/// types (feature `openapi`), and a test fails when it differs from what they generate. Served
/// as it is, so no function links the generator.
pub const OPENAPI_JSON: &str = include_str!("../../../openapi.json");

pub(super) async fn openapi() -> ([(header::HeaderName, &'static str); 1], &'static str) {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
