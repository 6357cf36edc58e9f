//! Storage plans: admins define them (total storage, largest file, longest video, uploads per
//! day) and assign them; a member without one has the configured default plan, and with no
//! default only the server-wide upload size limit applies. Uploads are checked against the
//! plan when they are announced.

use super::policy::{self, SiteAction};
use super::{Error, Result};
use crate::storage::plans::{self, Plan};
use crate::storage::users::{self, User};
use crate::storage::{is_unique_violation, now_ms, Db};

/// A day, for uploads per day (a rolling 24 hours).
const DAY_MS: i64 = 24 * 3600 * 1000;

/// A member's plan and what they hold against it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Usage {
    pub plan: Option<Plan>,
    pub used_bytes: i64,
    pub videos: i64,
    pub uploads_today: i64,
}

/// Changes to a plan; absent fields stay, `null` removes the limit.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PlanPatch {
    #[serde(default, deserialize_with = "some")]
    pub storage_bytes: Option<Option<i64>>,
    #[serde(default, deserialize_with = "some")]
    pub max_file_bytes: Option<Option<i64>>,
    #[serde(default, deserialize_with = "some")]
    pub max_duration_s: Option<Option<i64>>,
    #[serde(default, deserialize_with = "some")]
    pub uploads_per_day: Option<Option<i64>>,
}

/// Present-but-null as `Some(None)`.
fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    serde::Deserialize::deserialize(d).map(Some)
}

/// The plans service; cheap to clone.
#[derive(Clone)]
pub struct Plans {
    db: Db,
    default_plan: Option<String>,
}

fn check_plan(p: &Plan) -> Result<()> {
    let ok_name = (1..=32).contains(&p.name.len())
        && p.name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok_name {
        return Err(Error::invalid(
            "invalid_plan",
            "a plan's name is 1 to 32 characters of a-z, 0-9, - and _",
        ));
    }
    for (field, value) in [
        ("storage_bytes", p.storage_bytes),
        ("max_file_bytes", p.max_file_bytes),
        ("max_duration_s", p.max_duration_s),
        ("uploads_per_day", p.uploads_per_day),
    ] {
        if value.is_some_and(|v| v < 0) {
            return Err(Error::invalid(
                "invalid_plan",
                format!("{field} must be zero or more (or null for no limit)"),
            ));
        }
    }
    Ok(())
}

impl Plans {
    pub fn new(db: Db, default_plan: Option<String>) -> Plans {
        Plans { db, default_plan }
    }

    pub async fn list(&self, admin: &User) -> Result<Vec<Plan>> {
        policy::require_site(Some(admin), SiteAction::Administer)?;
        Ok(plans::list(&self.db.pool).await?)
    }

    pub async fn create(&self, admin: &User, plan: Plan) -> Result<Plan> {
        policy::require_site(Some(admin), SiteAction::Administer)?;
        check_plan(&plan)?;
        match plans::create(&self.db.pool, &plan, now_ms()).await {
            Ok(()) => Ok(plan),
            Err(e) if is_unique_violation(&e) => Err(Error::conflict(
                "plan_exists",
                format!("a plan named {} exists", plan.name),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn update(&self, admin: &User, name: &str, patch: PlanPatch) -> Result<Plan> {
        policy::require_site(Some(admin), SiteAction::Administer)?;
        let mut plan = plans::get(&self.db.pool, name)
            .await?
            .ok_or_else(|| Error::not_found("plan"))?;
        if let Some(v) = patch.storage_bytes {
            plan.storage_bytes = v;
        }
        if let Some(v) = patch.max_file_bytes {
            plan.max_file_bytes = v;
        }
        if let Some(v) = patch.max_duration_s {
            plan.max_duration_s = v;
        }
        if let Some(v) = patch.uploads_per_day {
            plan.uploads_per_day = v;
        }
        check_plan(&plan)?;
        plans::update(&self.db.pool, &plan).await?;
        Ok(plan)
    }

    /// Gives `username` the plan `name` (`None`: back to the default plan).
    pub async fn assign(&self, admin: &User, username: &str, name: Option<&str>) -> Result<()> {
        policy::require_site(Some(admin), SiteAction::Administer)?;
        let mut member = None;
        for key in crate::auth::lookup_keys(username) {
            if let Some(u) = users::find_by_key(&self.db.pool, &key).await? {
                member = Some(u);
                break;
            }
        }
        let member = member.ok_or_else(|| Error::not_found("user"))?;
        if let Some(name) = name {
            if plans::get(&self.db.pool, name).await?.is_none() {
                return Err(Error::not_found("plan"));
            }
        }
        let mut tx = self.db.begin().await?;
        plans::assign(&mut tx, member.id, name).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The plan that applies to `user`: their own, else the default (if it exists).
    pub async fn plan_of(&self, user: &User) -> Result<Option<Plan>> {
        self.plan_of_member(user.id).await
    }

    /// The plan that applies to the member `user_id`.
    pub async fn plan_of_member(&self, user_id: i64) -> Result<Option<Plan>> {
        if let Some(p) = plans::of_user(&self.db.pool, user_id).await? {
            return Ok(Some(p));
        }
        match &self.default_plan {
            Some(name) => Ok(plans::get(&self.db.pool, name).await?),
            None => Ok(None),
        }
    }

    pub async fn usage(&self, user: &User) -> Result<Usage> {
        let mut conn = self.db.pool.acquire().await?;
        self.usage_in(&mut conn, user).await
    }

    /// As [`Plans::usage`], read on `conn` (inside the caller's transaction). Everything is
    /// read on `conn`: a second connection from the pool, taken while the transaction holds
    /// one, deadlocks once parallel announcements hold every connection of the pool.
    async fn usage_in(&self, conn: &mut sqlx::AnyConnection, user: &User) -> Result<Usage> {
        let plan = match plans::of_user(&mut *conn, user.id).await? {
            Some(p) => Some(p),
            None => match &self.default_plan {
                Some(name) => plans::get(&mut *conn, name).await?,
                None => None,
            },
        };
        let u = plans::usage(conn, user.id, now_ms() - DAY_MS).await?;
        Ok(Usage {
            plan,
            used_bytes: u.used_bytes,
            videos: u.videos,
            uploads_today: u.uploads_since,
        })
    }

    /// Whether `user`'s plan has room for `bytes` more (a photo's served sizes, which are known
    /// only once it is processed).
    pub async fn check_storage(&self, user: &User, bytes: i64) -> Result<()> {
        let usage = self.usage(user).await?;
        if let Some(total) = usage.plan.as_ref().and_then(|p| p.storage_bytes) {
            if usage.used_bytes + bytes > total {
                return Err(Error::QuotaExceeded(format!(
                    "this photo needs {bytes} bytes and your plan has {} of {total} left",
                    (total - usage.used_bytes).max(0)
                )));
            }
        }
        Ok(())
    }

    /// Whether `user` may start an upload of `length` bytes under their plan, read on `conn`
    /// (the transaction that then records the upload, with the member's uploads serialised).
    pub async fn check_upload(
        &self,
        conn: &mut sqlx::AnyConnection,
        user: &User,
        length: i64,
    ) -> Result<()> {
        let usage = self.usage_in(conn, user).await?;
        let Some(plan) = usage.plan else {
            return Ok(());
        };
        if plan.max_file_bytes.is_some_and(|max| length > max) {
            return Err(Error::TooLarge(format!(
                "your plan allows files of at most {} bytes",
                plan.max_file_bytes.unwrap_or_default()
            )));
        }
        if let Some(total) = plan.storage_bytes {
            if usage.used_bytes + length > total {
                return Err(Error::QuotaExceeded(format!(
                    "this file needs {length} bytes and your plan has {} of {total} left",
                    (total - usage.used_bytes).max(0)
                )));
            }
        }
        if let Some(per_day) = plan.uploads_per_day {
            if usage.uploads_today >= per_day {
                return Err(Error::QuotaExceeded(format!(
                    "your plan allows {per_day} uploads a day; try again tomorrow"
                )));
            }
        }
        Ok(())
    }
}
