//! Review drafts written by a language model from what the author gives: the place (a place
//! post or a name), the menu items, notes, and (when the model reads pictures) their photos.
//! The draft streams back to the editor and is never stored: the author edits it, throws it
//! away, or posts it through the ordinary `POST /posts`. The prompt tells the model to use only
//! the facts given. Off unless the operator configures a model ([`Model`], implemented by
//! `crate::ai`); rate-limited per member.

use std::pin::Pin;
use std::sync::Arc;

use base64::Engine;
use futures_util::future::BoxFuture;
use futures_util::Stream;

use super::community::PlaceInput;
use super::{text, Error, Result};
use crate::auth::limiter::KeyedLimiter;
use crate::storage::blobs::Blobs;
use crate::storage::posts::{self, Kind};
use crate::storage::users::User;
use crate::storage::{images, Db};

/// Whether the model reads pictures, for the editor.
pub fn vision(d: &Drafts) -> bool {
    d.model.as_ref().is_some_and(|m| m.vision())
}

/// Pieces of the draft as they come.
pub type DraftStream = Pin<Box<dyn Stream<Item = std::result::Result<String, ModelError>> + Send>>;

/// What the model is asked.
#[derive(Debug, Clone)]
pub struct DraftRequest {
    pub system: String,
    pub user: String,
    /// Photos as `data:image/jpeg;base64,…` URLs (empty when the model does not read them).
    pub images: Vec<String>,
    pub max_tokens: u32,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Failed(String),
    #[error("the model took too long")]
    Timeout,
}

/// A language model behind some endpoint.
pub trait Model: Send + Sync {
    /// Whether it reads pictures.
    fn vision(&self) -> bool;
    /// Starts a streamed answer.
    fn stream(
        &self,
        req: DraftRequest,
    ) -> BoxFuture<'_, std::result::Result<DraftStream, ModelError>>;
}

/// What an author asks a draft from.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftInput {
    pub place_id: Option<String>,
    pub place: Option<PlaceInput>,
    #[serde(default)]
    pub menu: Vec<String>,
    #[serde(default)]
    pub image_ids: Vec<String>,
    pub notes: Option<String>,
    /// `en` or `ko`: the language to write in (default: the language of the notes and menu).
    pub lang: Option<String>,
}

pub const MAX_MENU: usize = 20;
pub const MAX_DRAFT_IMAGES: usize = 4;

/// The instructions every draft starts from.
const SYSTEM: &str = "You help a member of a community write a short review of a place they \
visited. Write in the first person, two or three short paragraphs, warm and plain. Use ONLY the \
facts given to you: the place, the items they had, their notes and what the photos show. Do not \
invent prices, dishes, staff, opening hours, locations, events or opinions that were not given; \
if something is not given, leave it out. Do not add a title, a rating, hashtags or emojis. \
Answer with the review text only.";

#[derive(Clone)]
pub struct Drafts {
    db: Db,
    blobs: Arc<dyn Blobs>,
    model: Option<Arc<dyn Model>>,
    per_user: Arc<KeyedLimiter<i64>>,
}

impl Drafts {
    pub fn new(
        db: Db,
        blobs: Arc<dyn Blobs>,
        model: Option<Arc<dyn Model>>,
        per_hour: u32,
    ) -> Drafts {
        let burst = per_hour.clamp(1, 5);
        Drafts {
            db,
            blobs,
            model,
            per_user: Arc::new(KeyedLimiter::new(
                burst,
                f64::from(per_hour) / 3600.0,
                100_000,
            )),
        }
    }

    /// Whether drafts are offered at all (the editor hides its button otherwise).
    pub fn enabled(&self) -> bool {
        self.model.is_some()
    }

    /// Starts a draft for `user`.
    pub async fn draft(&self, user: &User, input: DraftInput) -> Result<DraftStream> {
        let Some(model) = self.model.clone() else {
            return Err(Error::Disabled {
                code: "ai_disabled",
                message: "drafting with AI is not set up on this server".into(),
            });
        };
        let (place, facts) = self.place_facts(&input).await?;
        if input.menu.len() > MAX_MENU {
            return Err(Error::invalid(
                "invalid_menu",
                format!("at most {MAX_MENU} menu items"),
            ));
        }
        let mut menu = Vec::new();
        for m in &input.menu {
            match text::clean_line(m, 80) {
                Ok(m) => menu.push(m),
                Err(text::TextError::Empty) => {}
                Err(text::TextError::TooLong) => {
                    return Err(Error::invalid(
                        "invalid_menu",
                        "a menu item is at most 80 characters",
                    ))
                }
            }
        }
        let notes = match input.notes.as_deref() {
            None => None,
            Some(n) => match text::clean_block(n, 1000) {
                Ok(n) => Some(n),
                Err(text::TextError::Empty) => None,
                Err(text::TextError::TooLong) => {
                    return Err(Error::invalid(
                        "invalid_notes",
                        "notes are at most 1,000 characters",
                    ))
                }
            },
        };
        if input.image_ids.len() > MAX_DRAFT_IMAGES {
            return Err(Error::invalid(
                "invalid_images",
                format!("at most {MAX_DRAFT_IMAGES} photos go with a draft"),
            ));
        }
        let mut pictures = Vec::new();
        for id in &input.image_ids {
            let img = images::get(&self.db.pool, id)
                .await?
                .filter(|i| i.owner_id == user.id || i.post_id.is_some())
                .ok_or_else(|| Error::invalid("invalid_images", "a photo is unknown"))?;
            if model.vision() {
                pictures.push(img);
            }
        }
        if let Err(wait) = self.per_user.check(&user.id) {
            return Err(Error::RateLimited {
                retry_after_s: wait.as_secs().max(1),
            });
        }
        let mut images = Vec::new();
        for img in &pictures {
            let key = format!("images/{}/medium.{}", img.public_id, img.ext);
            let blob = self
                .blobs
                .get(&key, None)
                .await
                .map_err(|e| Error::Internal(anyhow::anyhow!("reading a photo: {e}")))?;
            let data = blob
                .bytes()
                .await
                .map_err(|e| Error::Internal(anyhow::anyhow!("reading a photo: {e}")))?;
            let mime = crate::photos::mime_of_ext(&img.ext);
            images.push(format!(
                "data:{mime};base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&data)
            ));
        }
        let korean = match input.lang.as_deref() {
            Some("ko") => true,
            Some(_) => false,
            None => [notes.as_deref().unwrap_or(""), &menu.join(" "), &place]
                .iter()
                .any(|s| s.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))),
        };
        let mut user_text = String::new();
        user_text.push_str(&facts);
        if !menu.is_empty() {
            user_text.push_str(&format!("What I had: {}\n", menu.join(", ")));
        }
        if let Some(n) = &notes {
            user_text.push_str(&format!("My notes: {n}\n"));
        }
        if !images.is_empty() {
            user_text.push_str(&format!("{} photo(s) I took are attached.\n", images.len()));
        }
        user_text.push_str(if korean {
            "Write the review in Korean (한국어)."
        } else {
            "Write the review in English."
        });
        let req = DraftRequest {
            system: SYSTEM.into(),
            user: user_text,
            images,
            max_tokens: 400,
        };
        model.stream(req).await.map_err(|e| Error::Upstream {
            code: "ai_failed",
            message: e.to_string(),
        })
    }

    /// The place's name and the facts given about it.
    async fn place_facts(&self, input: &DraftInput) -> Result<(String, String)> {
        match (&input.place_id, &input.place) {
            (Some(id), None) => {
                let post = match id.parse::<i64>() {
                    Ok(n) => posts::get(&self.db.pool, n).await?,
                    Err(_) => None,
                };
                let post = post
                    .filter(|p| p.kind == Kind::Place && p.hidden_at.is_none())
                    .ok_or_else(|| Error::not_found("place"))?;
                let place = posts::places(&self.db.pool, &[post.id]).await?.pop();
                let mut facts = format!("The place: {}", post.title);
                if let Some(pl) = &place {
                    facts.push_str(&format!(" ({})", pl.category));
                    if let Some(a) = &pl.address {
                        facts.push_str(&format!(", {a}"));
                    }
                }
                facts.push('\n');
                Ok((post.title, facts))
            }
            (None, Some(pl)) => {
                let name = text::clean_line(&pl.name, 100).map_err(|_| {
                    Error::invalid(
                        "invalid_place",
                        "the place needs a name of at most 100 characters",
                    )
                })?;
                let mut facts = format!("The place: {name}");
                if !pl.category.trim().is_empty() {
                    facts.push_str(&format!(
                        " ({})",
                        pl.category.trim().chars().take(30).collect::<String>()
                    ));
                }
                if let Some(a) = pl
                    .address
                    .as_deref()
                    .and_then(|a| text::clean_line(a, 200).ok())
                {
                    facts.push_str(&format!(", {a}"));
                }
                facts.push('\n');
                Ok((name, facts))
            }
            _ => Err(Error::invalid(
                "invalid_place",
                "give place_id or place (one of them)",
            )),
        }
    }
}
