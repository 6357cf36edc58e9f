//! Site administration over HTTP: the blocked-terms list (and its allow list of innocent words).

use axum::extract::{FromRequest, Request, State};
use axum::Json;

use axum::http::StatusCode;

use super::error::{ApiJson, ApiPath, ApiResult};
use super::extract::CurrentUser;
use crate::domain::plans::PlanPatch;
use crate::domain::policy::{self, SiteAction};
use crate::domain::settings::BlockedTerms;
use crate::state::AppState;
use crate::storage::plans::Plan;

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

pub async fn list_plans(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<serde_json::Value>> {
    let plans = state.plans.list(&user).await?;
    Ok(Json(serde_json::json!({ "plans": plans })))
}

pub async fn create_plan(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(plan): ApiJson<Plan>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let plan = state.plans.create(&user, plan).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "plan": plan })),
    ))
}

pub async fn update_plan(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(name): ApiPath<String>,
    ApiJson(patch): ApiJson<PlanPatch>,
) -> ApiResult<Json<serde_json::Value>> {
    let plan = state.plans.update(&user, &name, patch).await?;
    Ok(Json(serde_json::json!({ "plan": plan })))
}

#[derive(serde::Deserialize)]
pub struct Assignment {
    plan: Option<String>,
}

pub async fn assign_plan(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(username): ApiPath<String>,
    ApiJson(body): ApiJson<Assignment>,
) -> ApiResult<Json<serde_json::Value>> {
    state
        .plans
        .assign(&user, &username, body.plan.as_deref())
        .await?;
    Ok(Json(serde_json::json!({ "plan": body.plan })))
}

/// `GET /me/usage`: the caller's plan and what they hold against it.
pub async fn my_usage(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<crate::domain::plans::Usage>> {
    Ok(Json(state.plans.usage(&user).await?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    role: String,
}

/// `PUT /api/v1/admin/users/{username}/role` `{"role":"member"|"moderator"|"admin"}`.
pub async fn set_role(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(username): ApiPath<String>,
    ApiJson(body): ApiJson<RoleChange>,
) -> ApiResult<Json<serde_json::Value>> {
    let member = state
        .accounts
        .set_role(&user, &username, &body.role)
        .await?;
    Ok(Json(
        serde_json::json!({ "user": crate::views::UserView::from(&member) }),
    ))
}
