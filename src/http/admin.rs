//! Site administration: the blocked-terms list (and its allow list of innocent words).

use axum::extract::State;
use axum::Json;
use moim_filter::Filter;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiJson, ApiResult};
use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::realtime::Hub;
use crate::storage::users::Role;
use crate::storage::{settings, Db};

const KEY: &str = "blocked_terms";
const MAX_TERMS: usize = 2000;
const MAX_TERM_CHARS: usize = 64;

/// The stored lists.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BlockedTerms {
    pub terms: Vec<String>,
    #[serde(default)]
    pub allowed: Vec<String>,
}

async fn read(db: &Db) -> anyhow::Result<BlockedTerms> {
    Ok(match settings::get(&db.pool, KEY).await? {
        Some(text) => serde_json::from_str(&text)?,
        None => BlockedTerms::default(),
    })
}

/// Builds the chat filter from the stored lists (at start-up and after each change).
pub async fn load_filter(db: &Db, hub: &Hub) -> anyhow::Result<()> {
    let lists = read(db).await?;
    hub.set_filter(Filter::with_default_allowlist(&lists.terms, &lists.allowed));
    Ok(())
}

fn require_admin(user: &crate::storage::users::User) -> ApiResult<()> {
    if user.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden("admins only".into()))
    }
}

pub async fn get_blocked_terms(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<BlockedTerms>> {
    require_admin(&user)?;
    Ok(Json(read(&state.db).await?))
}

fn tidy(list: Vec<String>, what: &str) -> ApiResult<Vec<String>> {
    if list.len() > MAX_TERMS {
        return Err(ApiError::invalid(
            "too_many_terms",
            format!("at most {MAX_TERMS} {what}"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for t in list {
        let t = t.trim().to_string();
        if t.chars().count() > MAX_TERM_CHARS {
            return Err(ApiError::invalid(
                "term_too_long",
                format!("each of the {what} must be at most {MAX_TERM_CHARS} characters"),
            ));
        }
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

pub async fn put_blocked_terms(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<BlockedTerms>,
) -> ApiResult<Json<BlockedTerms>> {
    require_admin(&user)?;
    let lists = BlockedTerms {
        terms: tidy(body.terms, "terms")?,
        allowed: tidy(body.allowed, "allowed words")?,
    };
    let text = serde_json::to_string(&lists).map_err(anyhow::Error::from)?;
    settings::put(&state.db.pool, KEY, &text).await?;
    state
        .hub
        .set_filter(Filter::with_default_allowlist(&lists.terms, &lists.allowed));
    tracing::info!(terms = lists.terms.len(), by = %user.username, "blocked terms updated");
    Ok(Json(lists))
}
