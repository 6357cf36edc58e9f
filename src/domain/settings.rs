//! Site settings kept by admins: the blocked-terms list and its allow list of innocent words.
//! A change is published so the chat filter (in the rooms hub) is rebuilt at once.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::events::{Broker, Event};
use super::policy::{self, SiteAction};
use super::{Error, Result};
use crate::storage::users::User;
use crate::storage::{settings, Db};

const KEY: &str = "blocked_terms";
pub const MAX_TERMS: usize = 2000;
pub const MAX_TERM_CHARS: usize = 64;

/// The largest body a valid lists update can be: both lists full of the longest terms, each
/// character a 4-byte one escaped as two `\uXXXX` surrogates (12 bytes), plus quotes and commas.
pub const MAX_LISTS_BYTES: usize = 2 * MAX_TERMS * (MAX_TERM_CHARS * 12 + 3) + 64;

/// The stored lists.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct BlockedTerms {
    pub terms: Vec<String>,
    #[serde(default)]
    pub allowed: Vec<String>,
}

/// Site settings; cheap to clone.
#[derive(Clone)]
pub struct Settings {
    db: Db,
    broker: Arc<dyn Broker>,
}

/// The stored blocked-terms lists (empty until an admin sets them).
pub async fn blocked_terms(db: &Db) -> anyhow::Result<BlockedTerms> {
    Ok(match settings::get(&db.pool, KEY).await? {
        Some(text) => serde_json::from_str(&text)?,
        None => BlockedTerms::default(),
    })
}

fn tidy(list: Vec<String>, what: &str) -> Result<Vec<String>> {
    if list.len() > MAX_TERMS {
        return Err(Error::invalid(
            "too_many_terms",
            format!("at most {MAX_TERMS} {what}"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for t in list {
        let t = match super::text::clean_line(&t, MAX_TERM_CHARS) {
            Ok(t) => t,
            // Blank (or invisible-only) entries are dropped, as an empty line in the editor.
            Err(super::text::TextError::Empty) => continue,
            Err(super::text::TextError::TooLong) => {
                return Err(Error::invalid(
                    "term_too_long",
                    format!("each of the {what} must be at most {MAX_TERM_CHARS} characters"),
                ))
            }
        };
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

impl Settings {
    pub fn new(db: Db, broker: Arc<dyn Broker>) -> Settings {
        Settings { db, broker }
    }

    pub async fn blocked_terms(&self, user: &User) -> Result<BlockedTerms> {
        policy::require_site(Some(user), SiteAction::Administer)?;
        Ok(blocked_terms(&self.db).await?)
    }

    /// Replaces the lists (trimmed, de-duplicated) and returns them as stored.
    pub async fn set_blocked_terms(
        &self,
        user: &User,
        lists: BlockedTerms,
    ) -> Result<BlockedTerms> {
        policy::require_site(Some(user), SiteAction::Administer)?;
        let lists = BlockedTerms {
            terms: tidy(lists.terms, "terms")?,
            allowed: tidy(lists.allowed, "allowed words")?,
        };
        let text = serde_json::to_string(&lists).map_err(anyhow::Error::from)?;
        settings::put(&self.db.pool, KEY, &text).await?;
        tracing::info!(terms = lists.terms.len(), by = %user.username, "blocked terms updated");
        self.broker
            .publish(Event::BlockedTerms {
                terms: lists.terms.clone(),
                allowed: lists.allowed.clone(),
            })
            .await;
        Ok(lists)
    }
}
