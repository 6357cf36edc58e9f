//! Site administration over HTTP: the blocked-terms list (and its allow list of innocent words).

use axum::extract::State;
use axum::Json;

use super::error::{ApiJson, ApiResult};
use super::extract::CurrentUser;
use crate::domain::settings::BlockedTerms;
use crate::state::AppState;

pub async fn get_blocked_terms(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<BlockedTerms>> {
    Ok(Json(state.settings.blocked_terms(&user).await?))
}

pub async fn put_blocked_terms(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<BlockedTerms>,
) -> ApiResult<Json<BlockedTerms>> {
    Ok(Json(state.settings.set_blocked_terms(&user, body).await?))
}
