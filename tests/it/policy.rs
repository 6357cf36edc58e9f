//! The permission table: every state-changing endpoint of docs/api.md (and the permissioned
//! reads), tried as anonymous, member, moderator, owner and admin. Below the least standing an
//! endpoint needs the answer is 401 (anonymous) or 403; from it up, the endpoint works.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, Client, TestApp, User};

backend_tests!(every_endpoint_answers_each_standing_as_the_policy_says);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Standing {
    Anonymous,
    Member,
    Moderator,
    Owner,
    Admin,
}

const STANDINGS: [Standing; 5] = [
    Standing::Anonymous,
    Standing::Member,
    Standing::Moderator,
    Standing::Owner,
    Standing::Admin,
];

/// What must hold before an allowed attempt (allowed attempts change things).
#[derive(Debug, Clone, Copy)]
enum Setup {
    None,
    /// The room exists again (with its moderator), after a successful delete.
    Room,
    /// A fresh message from the victim; `{seq}` in the path is its seq.
    Message,
    /// `member2` is a moderator.
    Moderator,
    /// The victim is banned.
    Ban,
    /// The victim is timed out.
    Timeout,
    /// A fresh public video of the owner's; `{video}` in the path is its id.
    Video,
    /// A pin the victim dropped; `{seq}` in the path is its id.
    Pin,
    /// A poll the victim started; `{seq}` in the path is its id.
    Poll,
}

struct Row {
    method: Method,
    /// `{room}` is the row's own room, `{seq}` a message from the setup, `{n}` a fresh number.
    path: &'static str,
    body: Option<Value>,
    least: Standing,
    ok: u16,
    setup: Setup,
}

fn row(method: Method, path: &'static str, body: Option<Value>, least: Standing, ok: u16) -> Row {
    Row {
        method,
        path,
        body,
        least,
        ok,
        setup: Setup::None,
    }
}

struct People {
    admin: User,
    owner: User,
    moderator: User,
    member: User,
    victim: User,
}

impl People {
    fn client(&self, app: &TestApp, s: Standing) -> Client {
        match s {
            Standing::Anonymous => app.anon(),
            Standing::Member => self.member.client.clone(),
            Standing::Moderator => self.moderator.client.clone(),
            Standing::Owner => self.owner.client.clone(),
            Standing::Admin => self.admin.client.clone(),
        }
    }
}

async fn make_room(app: &TestApp, p: &People, slug: &str) {
    app.room(&p.owner, slug).await;
    let (st, body) = p
        .owner
        .client
        .post(
            &format!("/api/v1/rooms/{slug}/moderators"),
            json!({"username": "moderator"}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
}

/// A public video of the owner's, ready (a small H.264/AAC MP4: remuxed, no ffmpeg needed).
async fn public_video(app: &TestApp, p: &People) -> String {
    let data =
        std::fs::read(crate::helpers::manifest_dir().join("fuzz/corpus/mp4/h264-aac.mp4")).unwrap();
    let tus = crate::uploads::Tus::new(app, &p.owner);
    let (last, _) = tus.upload(&data, "clip.mp4", data.len()).await;
    let id = last.header("moim-video-id").unwrap().to_string();
    let c = &p.owner.client;
    crate::helpers::eventually(60, || async {
        let (_, v) = c.get(&format!("/api/v1/videos/{id}")).await;
        assert_ne!(v["video"]["status"], "failed", "{v}");
        (v["video"]["status"] == "ready").then_some(())
    })
    .await;
    let (st, body) = c
        .patch(
            &format!("/api/v1/videos/{id}"),
            json!({"visibility": "public"}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    id
}

async fn prepare(app: &TestApp, p: &People, setup: Setup, slug: &str) -> String {
    let owner = &p.owner.client;
    let ok = |(st, body): (u16, Value)| assert!((200..300).contains(&st), "{setup:?}: {body}");
    match setup {
        Setup::None => {}
        Setup::Room => {
            if owner.get(&format!("/api/v1/rooms/{slug}")).await.0 == 404 {
                make_room(app, p, slug).await;
            }
        }
        Setup::Message => {
            let mut ws = app.ws(Some(&p.victim), slug, None).await;
            ws.welcome().await;
            ws.say("a message to delete").await;
            let seq = ws.expect("message").await["seq"].as_i64().unwrap();
            ws.close().await;
            return seq.to_string();
        }
        Setup::Video => return public_video(app, p).await,
        Setup::Pin => {
            let (st, body) = p
                .victim
                .client
                .post(
                    &format!("/api/v1/rooms/{slug}/pins"),
                    json!({"name": "Somewhere", "lat": 37.5, "lng": 127.0}),
                )
                .await;
            assert_eq!(st, 201, "{body}");
            return body["pin"]["id"].as_str().unwrap().to_string();
        }
        Setup::Poll => {
            let (st, body) = p
                .victim
                .client
                .post(
                    &format!("/api/v1/rooms/{slug}/polls"),
                    json!({"question": "Where?", "options": ["Here", "There"]}),
                )
                .await;
            assert_eq!(st, 201, "{body}");
            return body["poll"]["id"].as_str().unwrap().to_string();
        }
        Setup::Moderator => ok(owner
            .post(
                &format!("/api/v1/rooms/{slug}/moderators"),
                json!({"username": "member2"}),
            )
            .await),
        Setup::Ban => ok(owner
            .post(
                &format!("/api/v1/rooms/{slug}/bans"),
                json!({"username": "victim"}),
            )
            .await),
        Setup::Timeout => ok(owner
            .post(
                &format!("/api/v1/rooms/{slug}/timeouts"),
                json!({"username": "victim", "duration_s": 60}),
            )
            .await),
    }
    "0".into()
}

async fn every_endpoint_answers_each_standing_as_the_policy_says(b: Backend) {
    use Standing::*;
    let app = spawn_app(b).await;
    let people = People {
        admin: app.signup("admin").await,
        owner: app.signup("owner").await,
        moderator: app.signup("moderator").await,
        member: app.signup("member").await,
        victim: app.signup("victim").await,
    };
    app.signup("member2").await;
    let terms = json!({"terms": ["badword"], "allowed": []});
    let rows = vec![
        row(
            Method::POST,
            "/api/v1/rooms",
            Some(json!({"slug": "new-{n}", "title": "New"})),
            Member,
            201,
        ),
        row(
            Method::PATCH,
            "/api/v1/rooms/{room}",
            Some(json!({"title": "Renamed"})),
            Owner,
            200,
        ),
        Row {
            setup: Setup::Room,
            ..row(Method::DELETE, "/api/v1/rooms/{room}", None, Owner, 204)
        },
        Row {
            setup: Setup::Message,
            ..row(
                Method::DELETE,
                "/api/v1/rooms/{room}/messages/{seq}",
                None,
                Moderator,
                204,
            )
        },
        row(
            Method::POST,
            "/api/v1/rooms/{room}/moderators",
            Some(json!({"username": "member2"})),
            Owner,
            201,
        ),
        Row {
            setup: Setup::Moderator,
            ..row(
                Method::DELETE,
                "/api/v1/rooms/{room}/moderators/member2",
                None,
                Owner,
                204,
            )
        },
        row(
            Method::POST,
            "/api/v1/rooms/{room}/bans",
            Some(json!({"username": "victim"})),
            Moderator,
            201,
        ),
        Row {
            setup: Setup::Ban,
            ..row(
                Method::DELETE,
                "/api/v1/rooms/{room}/bans/victim",
                None,
                Moderator,
                204,
            )
        },
        row(
            Method::GET,
            "/api/v1/rooms/{room}/bans",
            None,
            Moderator,
            200,
        ),
        row(
            Method::POST,
            "/api/v1/rooms/{room}/timeouts",
            Some(json!({"username": "victim", "duration_s": 60})),
            Moderator,
            201,
        ),
        Row {
            setup: Setup::Timeout,
            ..row(
                Method::DELETE,
                "/api/v1/rooms/{room}/timeouts/victim",
                None,
                Moderator,
                204,
            )
        },
        // The voice endpoints' standings are tried in webrtc.rs (they need a live session).
        row(
            Method::GET,
            "/api/v1/rooms/{room}/stream-key",
            None,
            Owner,
            200,
        ),
        row(
            Method::POST,
            "/api/v1/rooms/{room}/stream-key",
            None,
            Owner,
            201,
        ),
        row(
            Method::POST,
            "/api/v1/rooms/{room}/invites",
            Some(json!({"max_uses": 5})),
            Owner,
            201,
        ),
        row(
            Method::GET,
            "/api/v1/rooms/{room}/invites",
            None,
            Owner,
            200,
        ),
        row(
            Method::POST,
            "/api/v1/rooms/{room}/pins",
            Some(json!({"name": "Ramen {n}", "lat": 37.5, "lng": 127.0})),
            Member,
            201,
        ),
        Row {
            setup: Setup::Pin,
            ..row(
                Method::DELETE,
                "/api/v1/rooms/{room}/pins/{seq}",
                None,
                Moderator,
                204,
            )
        },
        row(
            Method::POST,
            "/api/v1/rooms/{room}/polls",
            Some(json!({"question": "Dinner {n}?", "options": ["Ramen", "Tacos"]})),
            Member,
            201,
        ),
        Row {
            setup: Setup::Poll,
            ..row(
                Method::POST,
                "/api/v1/polls/{seq}/close",
                None,
                Moderator,
                200,
            )
        },
        row(Method::GET, "/api/v1/admin/blocked-terms", None, Admin, 200),
        row(
            Method::PUT,
            "/api/v1/admin/blocked-terms",
            Some(terms),
            Admin,
            200,
        ),
        row(
            Method::POST,
            "/api/v1/me/tokens",
            Some(json!({"name": "ci"})),
            Member,
            201,
        ),
        row(Method::GET, "/api/v1/videos", None, Member, 200),
        row(Method::GET, "/api/v1/me/usage", None, Member, 200),
        row(Method::GET, "/api/v1/me/identities", None, Member, 200),
        row(
            Method::GET,
            "/api/v1/admin/sign-in-providers",
            None,
            Admin,
            200,
        ),
        row(Method::GET, "/api/v1/admin/plans", None, Admin, 200),
        row(
            Method::POST,
            "/api/v1/admin/plans",
            Some(json!({"name": "plan-{n}", "storage_bytes": 1000})),
            Admin,
            201,
        ),
        row(
            Method::PUT,
            "/api/v1/admin/users/victim/plan",
            Some(json!({"plan": null})),
            Admin,
            200,
        ),
        Row {
            setup: Setup::Video,
            ..row(
                Method::PATCH,
                "/api/v1/videos/{video}",
                Some(json!({"title": "Renamed", "visibility": "unlisted"})),
                Owner,
                200,
            )
        },
        Row {
            setup: Setup::Video,
            ..row(
                Method::GET,
                "/api/v1/videos/{video}/original",
                None,
                Owner,
                200,
            )
        },
        Row {
            setup: Setup::Video,
            ..row(
                Method::POST,
                "/api/v1/videos/{video}/shares",
                Some(json!({"max_views": 3})),
                Owner,
                201,
            )
        },
        Row {
            setup: Setup::Video,
            ..row(
                Method::GET,
                "/api/v1/videos/{video}/shares",
                None,
                Owner,
                200,
            )
        },
        Row {
            setup: Setup::Video,
            ..row(Method::DELETE, "/api/v1/videos/{video}", None, Owner, 204)
        },
    ];
    let mut n = 0;
    for (i, r) in rows.iter().enumerate() {
        let slug = format!("policy-{i}");
        make_room(&app, &people, &slug).await;
        for s in STANDINGS {
            // A video, pin or poll must exist for a refusal to be about standing (not 404).
            let seq = if s >= r.least || matches!(r.setup, Setup::Video | Setup::Pin | Setup::Poll)
            {
                prepare(&app, &people, r.setup, &slug).await
            } else {
                "0".into()
            };
            n += 1;
            let path = r
                .path
                .replace("{room}", &slug)
                .replace("{seq}", &seq)
                .replace("{video}", &seq)
                .replace("{n}", &n.to_string());
            let body = r.body.as_ref().map(|b| {
                serde_json::from_str(&b.to_string().replace("{n}", &n.to_string())).unwrap()
            });
            let (st, answer) = people
                .client(&app, s)
                .send(r.method.clone(), &path, body)
                .await;
            let want = match (s >= r.least, s) {
                (true, _) => r.ok,
                (false, Anonymous) => 401,
                (false, _) => 403,
            };
            assert_eq!(st, want, "{} {path} as {s:?}: {answer}", r.method);
            if st >= 400 {
                let code = answer["error"].as_str().unwrap_or_default();
                assert!(
                    code == "login_required" || code == "forbidden",
                    "{} {path} as {s:?}: {answer}",
                    r.method
                );
            }
        }
    }
    // Revoking a token is for its holder only: others are told it does not exist.
    let (st, tok) = people
        .member
        .client
        .post("/api/v1/me/tokens", json!({"name": "mine"}))
        .await;
    assert_eq!(st, 201, "{tok}");
    let path = format!("/api/v1/me/tokens/{}", tok["id"].as_str().unwrap());
    assert_eq!(app.anon().delete(&path).await.0, 401);
    assert_eq!(people.admin.client.delete(&path).await.0, 404);
    assert_eq!(people.member.client.delete(&path).await.0, 204);
}
