//! Who is asking, as extractors: [`MaybeUser`] for endpoints anyone may call, [`CurrentUser`]
//! for those that need a signed-in caller (401 `login_required` otherwise). The credential rules
//! live in `auth`; this only adapts them to axum and caches the answer per request.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::state::AppState;
use crate::storage::users::User;

/// The caller, if they are logged in (cookie or bearer token).
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<User>);

/// The caller, who must be logged in.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(m) = parts.extensions.get::<MaybeUser>() {
            return Ok(m.clone());
        }
        let m = MaybeUser(crate::auth::resolve(&state.db, &parts.headers).await?);
        parts.extensions.insert(m.clone());
        Ok(m)
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match MaybeUser::from_request_parts(parts, state).await?.0 {
            Some(u) => Ok(CurrentUser(u)),
            None => Err(ApiError::Unauthorized),
        }
    }
}
