//! Site administration over HTTP: the blocked-terms list (and its allow list of innocent words).

use axum::extract::{FromRequest, Request, State};
use axum::Json;

use super::error::{ApiJson, ApiResult};
use super::extract::CurrentUser;
use crate::domain::policy::{self, SiteAction};
use crate::domain::settings::BlockedTerms;
use crate::state::AppState;

pub async fn get_blocked_terms(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<BlockedTerms>> {
    Ok(Json(state.settings.blocked_terms(&user).await?))
}

/// The body (up to a few MiB on this route) is read only once the caller is known to be an
/// admin, so members cannot make the server parse large bodies.
pub async fn put_blocked_terms(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    req: Request,
) -> ApiResult<Json<BlockedTerms>> {
    policy::require_site(Some(&user), SiteAction::Administer)?;
    let ApiJson(body) = ApiJson::<BlockedTerms>::from_request(req, &state).await?;
    Ok(Json(state.settings.set_blocked_terms(&user, body).await?))
}
