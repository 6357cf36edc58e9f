//! The community over HTTP on both databases: photos (sizes, orientation, metadata stripped,
//! limits decided from the header), posts of every kind with their validation and
//! permissions, likes and the hot order at a fixed clock, Korean search, places with
//! Bayesian ratings and rankings, comments with replies and the Wilson order, reports and
//! moderation, and the market's status.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_with, Backend, TestApp, User};

backend_tests!(
    photos_are_served_upright_in_three_sizes_without_metadata,
    photo_limits_are_decided_before_decoding,
    posts_of_every_kind_are_checked_and_kept_by_their_authors,
    likes_move_the_hot_order_and_a_year_old_post_stays_below_todays,
    korean_words_of_two_syllables_are_found,
    places_rank_by_the_bayesian_average_of_their_reviews,
    comments_reply_one_level_and_rank_by_wilson,
    reports_reach_moderators_who_hide_and_delete,
    a_listing_goes_on_sale_reserved_sold_by_its_seller_alone,
    contacting_the_seller_opens_one_private_room_per_buyer,
    writing_is_paced_and_photos_count_against_the_plan,
);

/// A JPEG `w`×`h` whose left half is red and right half blue, carrying `app` segments.
fn jpeg(w: u16, h: u16, exif: Option<&[u8]>, extra: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut pixels = Vec::with_capacity(w as usize * h as usize * 3);
    for _y in 0..h {
        for x in 0..w {
            if x < w / 2 {
                pixels.extend_from_slice(&[230, 20, 20]);
            } else {
                pixels.extend_from_slice(&[20, 20, 230]);
            }
        }
    }
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 92);
    if let Some(e) = exif {
        enc.add_exif_metadata(e).unwrap();
    }
    for (n, data) in extra {
        enc.add_app_segment(*n, data.clone()).unwrap();
    }
    enc.encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

/// A little-endian TIFF block: orientation 6 (turn 90° clockwise to view) and a GPS position.
fn exif_with_gps() -> Vec<u8> {
    let mut t: Vec<u8> = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    // IFD0 at 8: two entries.
    t.extend_from_slice(&2u16.to_le_bytes());
    // Orientation, SHORT, 1, value 6.
    t.extend_from_slice(&0x0112u16.to_le_bytes());
    t.extend_from_slice(&3u16.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&6u16.to_le_bytes());
    t.extend_from_slice(&[0, 0]);
    // GPS IFD pointer, LONG, 1, at 38.
    t.extend_from_slice(&0x8825u16.to_le_bytes());
    t.extend_from_slice(&4u16.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&38u32.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(t.len(), 38);
    // GPS IFD: latitude ref 'N', latitude 37/1 33/1 59/1 (rationals at 68).
    t.extend_from_slice(&2u16.to_le_bytes());
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&2u16.to_le_bytes());
    t.extend_from_slice(&2u32.to_le_bytes());
    t.extend_from_slice(b"N\0\0\0");
    t.extend_from_slice(&2u16.to_le_bytes());
    t.extend_from_slice(&5u16.to_le_bytes());
    t.extend_from_slice(&3u32.to_le_bytes());
    t.extend_from_slice(&68u32.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(t.len(), 68);
    for (n, d) in [(37u32, 1u32), (33, 1), (59, 1)] {
        t.extend_from_slice(&n.to_le_bytes());
        t.extend_from_slice(&d.to_le_bytes());
    }
    t
}

/// The markers of a JPEG's segments before its scan.
fn jpeg_segments(data: &[u8]) -> Vec<u8> {
    assert_eq!(&data[..2], &[0xFF, 0xD8], "a JPEG");
    let mut i = 2;
    let mut out = Vec::new();
    while i + 4 <= data.len() && data[i] == 0xFF {
        let marker = data[i + 1];
        out.push(marker);
        if marker == 0xDA {
            break;
        }
        let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
        i += 2 + len;
    }
    out
}

async fn upload(user: &User, body: Vec<u8>, content_type: &str) -> (u16, Value) {
    user.client
        .post_bytes("/api/v1/images", content_type, body)
        .await
}

async fn photos_are_served_upright_in_three_sizes_without_metadata(backend: Backend) {
    let app = spawn_app(backend).await;
    let mina = app.signup("mina").await;
    let xmp = [
        b"http://ns.adobe.com/xap/1.0/\0".to_vec(),
        b"<x:xmpmeta><exif:GPSLatitude>37,33.98N</exif:GPSLatitude></x:xmpmeta>".to_vec(),
    ]
    .concat();
    let iptc = b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x0a\x1c\x02\x5a\0\x05Seoul".to_vec();
    // 3000 × 1000, to be turned upright: 1000 × 3000.
    let original = jpeg(3000, 1000, Some(&exif_with_gps()), &[(1, xmp), (13, iptc)]);
    let (s, body) = upload(&mina, original, "image/jpeg").await;
    assert_eq!(s, 201, "{body}");
    let img = &body["image"];
    assert_eq!(
        (img["width"].as_i64(), img["height"].as_i64()),
        (Some(1000), Some(3000))
    );
    assert!(
        img["thumbhash"].as_str().is_some_and(|t| t.len() > 10),
        "{img}"
    );
    for (size, long) in [("thumb", 320u32), ("medium", 1280), ("large", 2560)] {
        let url = img["variants"][size].as_str().unwrap();
        let file = app.anon().bytes(url).await;
        let segments = jpeg_segments(&file);
        assert!(
            !segments.iter().any(|m| matches!(m, 0xE1..=0xEF | 0xFE)),
            "{size}: only JFIF and the picture's own segments, got {segments:x?}"
        );
        for needle in [&b"Exif"[..], b"GPS", b"xap/1.0", b"Photoshop", b"Seoul"] {
            assert!(
                !file.windows(needle.len()).any(|w| w == needle),
                "{size} still holds {:?}",
                String::from_utf8_lossy(needle)
            );
        }
        let decoded = image::load_from_memory(&file).unwrap().to_rgb8();
        let (w, h) = decoded.dimensions();
        assert_eq!(h, long.min(3000), "{size} height");
        assert_eq!(
            w,
            (f64::from(long.min(3000)) / 3.0).round() as u32,
            "{size} width"
        );
        // Turned clockwise: the left (red) half is now on top.
        let top = decoded.get_pixel(w / 2, h / 8).0;
        let bottom = decoded.get_pixel(w / 2, h * 7 / 8).0;
        assert!(top[0] > 150 && top[2] < 100, "{size} top is red: {top:?}");
        assert!(
            bottom[2] > 150 && bottom[0] < 100,
            "{size} bottom is blue: {bottom:?}"
        );
    }
    // A small picture is never made larger, and transparency survives as WebP.
    let mut png = Vec::new();
    let mut rgba = image::RgbaImage::new(64, 48);
    for (x, _, p) in rgba.enumerate_pixels_mut() {
        *p = image::Rgba([0, 200, 0, if x < 32 { 0 } else { 255 }]);
    }
    image::DynamicImage::ImageRgba8(rgba)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let (s, body) = upload(&mina, png, "image/png").await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["image"]["sizes"]["large"], json!([64, 48]));
    let url = body["image"]["variants"]["thumb"].as_str().unwrap();
    let file = app.anon().bytes(url).await;
    assert_eq!(&file[..4], b"RIFF");
    let back = image::load_from_memory(&file).unwrap().to_rgba8();
    assert_eq!(back.dimensions(), (64, 48));
    assert_eq!(back.get_pixel(0, 0).0[3], 0);
    // Unknown sizes and photos are 404s; anonymous uploads 401.
    assert_eq!(app.anon().status(&format!("{}x", url)).await, 404);
    assert_eq!(app.anon().status("/images/nope/thumb").await, 404);
    let (s, _) = app
        .anon()
        .post_bytes("/api/v1/images", "image/jpeg", jpeg(8, 8, None, &[]))
        .await;
    assert_eq!(s, 401);
}

async fn photo_limits_are_decided_before_decoding(backend: Backend) {
    let app = spawn_app(backend).await;
    let mina = app.signup("mina").await;
    // A PNG whose header claims 100000 × 100000 (10 gigapixels) and nothing after it.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&100_000u32.to_be_bytes());
    png.extend_from_slice(&100_000u32.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    let before = app.proc_kib("VmHWM");
    let (s, body) = upload(&mina, png, "image/png").await;
    assert_eq!(s, 413, "{body}");
    assert_eq!(body["error"], "image_too_large");
    assert!(
        body["message"].as_str().unwrap().contains("megapixels"),
        "{body}"
    );
    // 40 GB of RGBA was never asked for: the peak stayed where it was, give or take.
    assert!(app.proc_kib("VmHWM") < before + 64 * 1024);
    // Over 25 MB: refused from its length, before any of the body is sent (a client that
    // sent it all would race the answer and the closing connection).
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(&app.host).await.unwrap();
        let head = format!(
            "POST /api/v1/images HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nContent-Type: image/jpeg\r\n\
             Content-Length: {}\r\n\r\n",
            app.host,
            mina.cookie,
            26 * 1024 * 1024
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") || !answer.ends_with(b"}") {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "the server answers: {}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
        assert!(text.contains("image_too_large"), "{text}");
    }
    // Not a picture, a picture type not taken, a broken one.
    let (s, body) = upload(&mina, b"hello, this is text".to_vec(), "image/png").await;
    assert_eq!(
        (s, body["error"].as_str()),
        (415, Some("unsupported_image")),
        "{body}"
    );
    let (s, body) = upload(&mina, jpeg(8, 8, None, &[]), "text/plain").await;
    assert_eq!(
        (s, body["error"].as_str()),
        (415, Some("unsupported_image")),
        "{body}"
    );
    let mut cut = jpeg(200, 200, None, &[]);
    cut.truncate(cut.len() / 2);
    let (s, body) = upload(&mina, cut, "image/jpeg").await;
    assert!(
        s == 415 || s == 201,
        "a cut JPEG is refused or decoded as far as it goes: {s} {body}"
    );
    // The server is fine afterwards.
    let (s, _) = upload(&mina, jpeg(16, 16, None, &[]), "image/jpeg").await;
    assert_eq!(s, 201);
}

async fn post(user: &User, body: Value) -> Value {
    let (s, b) = user.client.post("/api/v1/posts", body).await;
    assert_eq!(s, 201, "{b}");
    b["post"].clone()
}

async fn a_place(user: &User, name: &str) -> Value {
    post(
        user,
        json!({"kind":"place","title":name,"body":"",
               "place":{"name":name,"category":"cafe","address":"서울 강남구","lat":37.5,"lng":127.03}}),
    )
    .await
}

async fn posts_of_every_kind_are_checked_and_kept_by_their_authors(backend: Backend) {
    let app = spawn_app(backend).await;
    let _admin = app.signup("admin").await;
    let mina = app.signup("mina").await;
    let joon = app.signup("joon").await;
    let (_, photo) = upload(&mina, jpeg(40, 30, None, &[]), "image/jpeg").await;
    let photo_id = photo["image"]["id"].as_str().unwrap().to_string();
    let place = post(
        &mina,
        json!({"kind":"place","title":"멍멍 동물병원","body":"주말에도 진료해요",
               "tags":["#병원","강아지"],"image_ids":[photo_id],
               "place":{"name":"멍멍 동물병원","category":"hospital","address":"서울 마포구",
                        "lat":37.55,"lng":126.92,"hours":"10-20","phone":"02-123-4567"}}),
    )
    .await;
    assert_eq!(place["kind"], "place");
    assert_eq!(place["tags"], json!(["병원", "강아지"]));
    assert_eq!(place["images"][0]["id"], photo_id.as_str());
    assert_eq!(place["place"]["category"], "hospital");
    assert_eq!(place["author"]["username"], "mina");
    assert_eq!(
        (place["likes"].as_i64(), place["liked_by_me"].as_bool()),
        (Some(0), Some(false))
    );
    let pid = place["id"].as_str().unwrap();
    // The photo is the post's now: nobody else can take it.
    let (s, b) = joon
        .client
        .post(
            "/api/v1/posts",
            json!({"kind":"talk","title":"hi","body":"x","image_ids":[photo_id]}),
        )
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (422, Some("invalid_fields")),
        "{b}"
    );
    assert!(b["fields"]["image_ids"].is_string(), "{b}");
    // Validation: every wrong field is named.
    let (s, b) = mina
        .client
        .post(
            "/api/v1/posts",
            json!({"kind":"review","title":"","body":"good","rating":9,"price":3}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    for f in ["title", "rating", "price", "place_id"] {
        assert!(b["fields"][f].is_string(), "{f} named in {b}");
    }
    let (s, b) = mina
        .client
        .post("/api/v1/posts", json!({"kind":"poem","title":"x"}))
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(b["fields"]["kind"].is_string());
    let (s, b) = mina
        .client
        .post(
            "/api/v1/posts",
            json!({"kind":"talk","title":"x","body":"y","likes":5}),
        )
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (422, Some("invalid_json")),
        "unknown fields are refused: {b}"
    );
    let (s, b) = mina
        .client
        .post(
            "/api/v1/posts",
            json!({"kind":"place","title":"x","place":{"name":"x","category":"spaceport","lat":95.0,"lng":0.0}}),
        )
        .await;
    assert_eq!(s, 422);
    assert!(
        b["fields"]["place.category"].is_string() && b["fields"]["lat"].is_string(),
        "{b}"
    );
    // A review, a listing and a talk post.
    let review = post(
        &joon,
        json!({"kind":"review","title":"친절해요","body":"선생님이 친절해요","place_id":pid,"rating":5}),
    )
    .await;
    assert_eq!(review["place_name"], "멍멍 동물병원");
    let (s, b) = joon
        .client
        .post(
            "/api/v1/posts",
            json!({"kind":"review","title":"again","body":"x","place_id":pid,"rating":1}),
        )
        .await;
    assert_eq!(s, 422, "one review per member and place: {b}");
    let listing = post(
        &joon,
        json!({"kind":"market","title":"유모차","body":"거의 새것","price":0,"condition":"like_new","neighbourhood":"망원동"}),
    )
    .await;
    assert_eq!(
        (listing["status"].as_str(), listing["price"].as_i64()),
        (Some("on_sale"), Some(0))
    );
    let talk = post(
        &mina,
        json!({"kind":"talk","title":"<b>안녕</b>","body":"<script>x</script>"}),
    )
    .await;
    assert_eq!(
        talk["title"], "<b>안녕</b>",
        "kept as text; the page escapes it"
    );
    // Others cannot change or delete; the author and admins can.
    let tid = talk["id"].as_str().unwrap();
    let (s, _) = joon
        .client
        .patch(&format!("/api/v1/posts/{tid}"), json!({"title":"mine now"}))
        .await;
    assert_eq!(s, 403);
    let (s, _) = joon.client.delete(&format!("/api/v1/posts/{tid}")).await;
    assert_eq!(s, 403);
    let (s, _) = app
        .anon()
        .patch(&format!("/api/v1/posts/{tid}"), json!({"title":"x"}))
        .await;
    assert_eq!(s, 401);
    let (s, b) = mina
        .client
        .patch(
            &format!("/api/v1/posts/{tid}"),
            json!({"title":"안녕하세요","tags":["인사"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["post"]["title"].as_str(), b["post"]["tags"][0].as_str()),
        (Some("안녕하세요"), Some("인사"))
    );
    let (s, _) = mina.client.delete(&format!("/api/v1/posts/{tid}")).await;
    assert_eq!(s, 204);
    assert_eq!(
        app.anon().status(&format!("/api/v1/posts/{tid}")).await,
        404
    );
    // Favourites.
    let lid = listing["id"].as_str().unwrap();
    let (s, _) = mina
        .client
        .put(&format!("/api/v1/posts/{lid}/favorite"), json!({}))
        .await;
    assert_eq!(s, 200);
    let (_, favs) = mina.client.get("/api/v1/me/favorites").await;
    assert_eq!(favs["posts"][0]["id"], lid);
    assert_eq!(favs["posts"][0]["favorited_by_me"], true);
    // Feeds by kind and by author, and a member's posts.
    let (_, b) = app.anon().get("/api/v1/posts?kind=market").await;
    assert_eq!(b["posts"].as_array().unwrap().len(), 1);
    let (_, b) = app.anon().get("/api/v1/posts?author=mina&sort=new").await;
    let kinds: Vec<&str> = b["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["place"]);
    let (s, b) = app.anon().get("/api/v1/posts?sort=best").await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_sort")));
}

/// 2026-12-01T00:00:00Z, the fixed clock of the ranking check.
const T0: i64 = 1_796_083_200_000;
const HOUR: i64 = 3_600_000;

async fn likes_move_the_hot_order_and_a_year_old_post_stays_below_todays(backend: Backend) {
    let app = spawn_with(backend, &["--login-rate-per-min", "1000"]).await;
    let mut members = Vec::new();
    for i in 0..12 {
        members.push(app.signup(&format!("member{i}")).await);
    }
    let author = &members[0];
    let mut ids = Vec::new();
    for title in ["old favourite", "fresh", "fresh and liked", "yesterday"] {
        let p = post(author, json!({"kind":"talk","title":title,"body":"x"})).await;
        ids.push(p["id"].as_str().unwrap().to_string());
    }
    // Ages on the fixed clock (the hot key is written from the creation time at each like).
    let ages = [365 * 24 * HOUR, 0, 0, 24 * HOUR];
    for (id, age) in ids.iter().zip(ages) {
        app.sql(&format!(
            "UPDATE posts SET created_at = {} WHERE id = {id}",
            T0 - age
        ))
        .await;
    }
    // The year-old post gets every like; the others a few.
    let likes = [12usize, 1, 10, 11];
    for (id, n) in ids.iter().zip(likes) {
        for m in &members[..n] {
            let (s, b) = m
                .client
                .put(&format!("/api/v1/posts/{id}/like"), json!({}))
                .await;
            assert_eq!(s, 200, "{b}");
        }
    }
    // Liking twice counts once; taking it back counts down.
    let (_, b) = members[0]
        .client
        .put(&format!("/api/v1/posts/{}/like", ids[1]), json!({}))
        .await;
    assert_eq!(b["likes"], 1);
    let (_, b) = members[5]
        .client
        .put(&format!("/api/v1/posts/{}/like", ids[1]), json!({}))
        .await;
    assert_eq!(b["likes"], 2);
    let (_, b) = members[5]
        .client
        .delete(&format!("/api/v1/posts/{}/like", ids[1]))
        .await;
    assert_eq!(b["likes"], 1);
    let (_, feed) = members[0].client.get("/api/v1/posts?sort=hot").await;
    let titles: Vec<&str> = feed["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["fresh and liked", "fresh", "yesterday", "old favourite"]
    );
    assert_eq!(feed["posts"][0]["liked_by_me"], true);
    // The stored key is the formula's, to the unit: log10(10) + created_s / 45000, × 10⁶.
    let hot = app
        .sql_rows(&format!("SELECT hot FROM posts WHERE id = {}", ids[2]))
        .await;
    let want = ((1.0 + (T0 as f64 / 1000.0) / 45_000.0) * 1e6).round() as i64;
    assert_eq!(hot, [want.to_string()]);
    // Top: by likes. New: newest id first. Pages follow their cursor.
    let (_, top) = app.anon().get("/api/v1/posts?sort=top&limit=2").await;
    let t: Vec<&str> = top["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(t, ["old favourite", "yesterday"]);
    let cursor = top["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .anon()
        .get(&format!("/api/v1/posts?sort=top&limit=2&cursor={cursor}"))
        .await;
    let t: Vec<&str> = rest["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(t, ["fresh and liked", "fresh"]);
    assert!(rest["next_cursor"].is_null());
    let (_, page) = app.anon().get("/api/v1/posts?sort=hot&limit=3").await;
    let c = page["next_cursor"].as_str().unwrap();
    let (_, last) = app
        .anon()
        .get(&format!("/api/v1/posts?sort=hot&limit=3&cursor={c}"))
        .await;
    assert_eq!(last["posts"][0]["title"], "old favourite");
    let (s, _) = app
        .anon()
        .get(&format!("/api/v1/posts?sort=new&cursor={c}"))
        .await;
    assert_eq!(s, 400, "a cursor belongs to its order");
    // This week's ranking counts likes given this week.
    let (_, r) = app
        .anon()
        .get("/api/v1/rankings?what=posts&period=week")
        .await;
    assert_eq!(r["ranking"][0]["post"]["title"], "old favourite");
    assert_eq!(r["ranking"][0]["score"], 12.0);
    assert_eq!(r["ranking"][0]["rank"], 1);
    // The hot feed uses its index (PostgreSQL's planner, with enough rows to prefer it).
    if matches!(app.backend, Backend::Postgres(_)) {
        app.sql(
            "INSERT INTO posts (kind, author_id, title, body, hot, search_text, created_at, updated_at) \
             SELECT 'talk', (SELECT MIN(id) FROM users), 'filler', '', g, '', g, g \
             FROM generate_series(1, 20000) g",
        )
        .await;
        app.sql("ANALYZE posts").await;
        let plan = app
            .sql_rows(&format!("EXPLAIN {}", moim::storage::posts::HOT_FEED_SQL))
            .await
            .join("\n");
        assert!(
            plan.contains("posts_hot"),
            "the hot feed scans its index:\n{plan}"
        );
        assert!(!plan.contains("Sort"), "and sorts nothing:\n{plan}");
    }
}

async fn korean_words_of_two_syllables_are_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let mina = app.signup("mina").await;
    for (title, body) in [
        ("강남 맛집 추천", "파스타가 맛있어요"),
        ("동물 병원 후기", "우리 강아지 예방접종"),
        ("맛있는 집", "여기는 집밥 느낌"),
        ("Best Coffee in Mapo", "flat white 50%_off"),
    ] {
        post(&mina, json!({"kind":"talk","title":title,"body":body})).await;
    }
    let found = |q: &'static str| {
        let app = &app;
        async move {
            let (s, b) = app
                .anon()
                .get(&format!("/api/v1/posts?q={}", urlencode(q)))
                .await;
            assert_eq!(s, 200, "{b}");
            let mut t: Vec<String> = b["posts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["title"].as_str().unwrap().to_string())
                .collect();
            t.sort();
            t
        }
    };
    assert_eq!(found("맛집").await, ["강남 맛집 추천"]);
    assert_eq!(found("병원").await, ["동물 병원 후기"]);
    assert_eq!(found("강아지").await, ["동물 병원 후기"]);
    assert_eq!(found("맛있").await, ["강남 맛집 추천", "맛있는 집"]);
    assert_eq!(found("개").await, Vec::<String>::new());
    assert_eq!(found("집").await, ["강남 맛집 추천", "맛있는 집"]);
    assert_eq!(found("coffee").await, ["Best Coffee in Mapo"]);
    assert_eq!(found("MAPO best").await, ["Best Coffee in Mapo"]);
    assert_eq!(found("50%_off").await, ["Best Coffee in Mapo"]);
    assert_eq!(found("50%x").await, Vec::<String>::new());
    // Decomposed Hangul (as some keyboards and file names give it) finds the same.
    assert_eq!(
        found("\u{1106}\u{1161}\u{11BA}\u{110C}\u{1175}\u{11B8}").await,
        ["강남 맛집 추천"]
    );
    // Edited text is found by its new words only.
    let (_, feed) = app.anon().get("/api/v1/posts?sort=new").await;
    let id = feed["posts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "맛있는 집")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = mina
        .client
        .patch(
            &format!("/api/v1/posts/{id}"),
            json!({"title":"조용한 카페","body":"책 읽기 좋아요"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(found("맛있").await, ["강남 맛집 추천"]);
    assert_eq!(found("카페").await, ["조용한 카페"]);
    // Tags and places near a point.
    post(
        &mina,
        json!({"kind":"place","title":"한강 공원","body":"","tags":["산책"],
        "place":{"name":"한강 공원","category":"park","lat":37.528,"lng":126.934}}),
    )
    .await;
    post(
        &mina,
        json!({"kind":"place","title":"해운대","body":"",
        "place":{"name":"해운대","category":"park","lat":35.158,"lng":129.160}}),
    )
    .await;
    let (_, b) = app.anon().get("/api/v1/posts?tag=%23산책").await;
    assert_eq!(b["posts"][0]["title"], "한강 공원");
    let (_, b) = app
        .anon()
        .get("/api/v1/posts?near=37.5665,126.9780&radius_m=10000")
        .await;
    let t: Vec<&str> = b["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(t, ["한강 공원"]);
    let (s, b) = app.anon().get("/api/v1/posts?near=91,0").await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_near")));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn places_rank_by_the_bayesian_average_of_their_reviews(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut members = Vec::new();
    for i in 0..6 {
        members.push(app.signup(&format!("member{i}")).await);
    }
    let one = a_place(&members[0], "한 번 5점").await;
    let many = a_place(&members[0], "꾸준히 4점대").await;
    let (one_id, many_id) = (one["id"].as_str().unwrap(), many["id"].as_str().unwrap());
    post(
        &members[1],
        json!({"kind":"review","title":"최고","body":"좋아요","place_id":one_id,"rating":5}),
    )
    .await;
    for (i, r) in [5, 4, 5, 4, 5].into_iter().enumerate() {
        post(&members[i + 1], json!({"kind":"review","title":"좋아요","body":"맛있어요","place_id":many_id,"rating":r})).await;
    }
    let low = a_place(&members[0], "별로").await;
    for m in &members[1..3] {
        post(m, json!({"kind":"review","title":"별로","body":"그냥 그래요","place_id":low["id"],"rating":2})).await;
    }
    let (s, b) = app.anon().get(&format!("/api/v1/places/{many_id}")).await;
    assert_eq!(s, 200, "{b}");
    let rating = &b["place"]["rating"];
    assert_eq!(rating["count"], 5);
    assert!((rating["average"].as_f64().unwrap() - 4.6).abs() < 1e-9);
    // The site's mean is 32/8; the prior counts as five reviews: (5 × 4 + 23) / 10.
    let mean = 32.0 / 8.0;
    assert!(
        (rating["bayesian"].as_f64().unwrap() - (5.0 * mean + 23.0) / 10.0).abs() < 1e-9,
        "{rating}"
    );
    assert_eq!(b["reviews"].as_array().unwrap().len(), 5);
    let stars: Vec<i64> = b["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rating"].as_i64().unwrap())
        .collect();
    assert_eq!(stars, [5, 4, 5, 4, 5], "newest first");
    let (_, b) = app.anon().get(&format!("/api/v1/places/{one_id}")).await;
    assert_eq!(b["place"]["rating"]["average"], 5.0);
    // Ranking: five good reviews beat one perfect one.
    let (_, r) = app
        .anon()
        .get("/api/v1/rankings?what=places&period=week")
        .await;
    let names: Vec<&str> = r["ranking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["post"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["꾸준히 4점대", "한 번 5점", "별로"]);
    assert!(
        r["ranking"][0]["score"].as_f64().unwrap() > r["ranking"][1]["score"].as_f64().unwrap()
    );
    // A changed review moves the place's rating; a deleted one leaves it.
    let rid = b["reviews"][0]["id"].as_str().unwrap();
    let (s, _) = members[1]
        .client
        .patch(&format!("/api/v1/posts/{rid}"), json!({"rating":1}))
        .await;
    assert_eq!(s, 200);
    let (_, b) = app.anon().get(&format!("/api/v1/places/{one_id}")).await;
    assert_eq!(b["place"]["rating"]["average"], 1.0);
    let (s, _) = members[1]
        .client
        .delete(&format!("/api/v1/posts/{rid}"))
        .await;
    assert_eq!(s, 204);
    let (_, b) = app.anon().get(&format!("/api/v1/places/{one_id}")).await;
    assert_eq!(b["place"]["rating"]["count"], 0);
    assert!(b["place"]["rating"]["average"].is_null());
    // Two reviews of one place sent at once: one is kept.
    let twice = json!({"kind":"review","title":"x","body":"y","place_id":many_id,"rating":3});
    let (a, b) = tokio::join!(
        members[0].client.post("/api/v1/posts", twice.clone()),
        members[0].client.post("/api/v1/posts", twice.clone())
    );
    let mut got = [a.0, b.0];
    got.sort();
    assert_eq!(got, [201, 422], "{} {}", a.1, b.1);
    // An edit and a hide in one change, and racing edits, leave the rating exact.
    let (_, b) = app.anon().get(&format!("/api/v1/places/{many_id}")).await;
    let mine = b["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["author"]["username"] == "member0")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = &members[0];
    let path = format!("/api/v1/posts/{mine}");
    let edits: Vec<_> = (0..6)
        .map(|i| admin.client.patch(&path, json!({"rating": 1 + (i % 5)})))
        .collect();
    for r in futures_util::future::join_all(edits).await {
        assert_eq!(r.0, 200, "{}", r.1);
    }
    let (s, _) = admin
        .client
        .patch(&path, json!({"rating": 5, "hidden": true}))
        .await;
    assert_eq!(s, 200);
    let (_, b) = app.anon().get(&format!("/api/v1/places/{many_id}")).await;
    assert_eq!(
        b["place"]["rating"]["count"], 5,
        "the hidden review is not counted"
    );
    assert!(
        (b["place"]["rating"]["average"].as_f64().unwrap() - 4.6).abs() < 1e-9,
        "{}",
        b["place"]["rating"]
    );
    let (s, _) = admin.client.patch(&path, json!({"hidden": false})).await;
    assert_eq!(s, 200);
    let (_, b) = app.anon().get(&format!("/api/v1/places/{many_id}")).await;
    assert_eq!(b["place"]["rating"]["count"], 6);
    assert!(
        (b["place"]["rating"]["average"].as_f64().unwrap() - 28.0 / 6.0).abs() < 1e-9,
        "{}",
        b["place"]["rating"]
    );
    // Others' reviews keep a place: its author cannot delete it, a moderator (here the admin) can.
    let (_, b) = members[2]
        .client
        .post(
            "/api/v1/posts",
            json!({"kind":"place","title":"q","place":{"name":"q","category":"cafe"}}),
        )
        .await;
    let qid = b["post"]["id"].as_str().unwrap().to_string();
    post(
        &members[1],
        json!({"kind":"review","title":"r","body":"r","place_id":qid,"rating":4}),
    )
    .await;
    let (s, b) = members[2]
        .client
        .delete(&format!("/api/v1/posts/{qid}"))
        .await;
    assert_eq!((s, b["error"].as_str()), (409, Some("has_reviews")));
    let (s, _) = members[0]
        .client
        .delete(&format!("/api/v1/posts/{qid}"))
        .await;
    assert_eq!(s, 204, "the admin may");
    // A review is not a place.
    let (_, feed) = app.anon().get("/api/v1/posts?kind=review").await;
    let review_id = feed["posts"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.anon()
            .status(&format!("/api/v1/places/{review_id}"))
            .await,
        404
    );
}

async fn comments_reply_one_level_and_rank_by_wilson(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut members = Vec::new();
    for i in 0..6 {
        members.push(app.signup(&format!("member{i}")).await);
    }
    let p = post(
        &members[0],
        json!({"kind":"talk","title":"질문","body":"어디가 좋아요?"}),
    )
    .await;
    let id = p["id"].as_str().unwrap();
    let path = format!("/api/v1/posts/{id}/comments");
    let mut comments = Vec::new();
    for (i, text) in ["one up", "many up", "mixed"].iter().enumerate() {
        let (s, b) = members[i + 1]
            .client
            .post(&path, json!({"body": text}))
            .await;
        assert_eq!(s, 201, "{b}");
        comments.push(b["comment"]["id"].as_str().unwrap().to_string());
    }
    let vote = |who: usize, c: usize, v: i64| {
        let (members, comments) = (&members, &comments);
        async move {
            let (s, b) = members[who]
                .client
                .put(
                    &format!("/api/v1/comments/{}/vote", comments[c]),
                    json!({"vote": v}),
                )
                .await;
            assert_eq!(s, 200, "{b}");
            b
        }
    };
    vote(0, 0, 1).await;
    for who in 0..5 {
        vote(who, 1, 1).await;
    }
    for who in 0..3 {
        vote(who, 2, 1).await;
    }
    vote(3, 2, -1).await;
    let b = vote(5, 1, 0).await;
    assert_eq!((b["up"].as_i64(), b["down"].as_i64()), (Some(5), Some(0)));
    // A reply, and a reply to a reply lands under the same comment.
    let (s, r) = members[4]
        .client
        .post(&path, json!({"body":"동의해요","parent_id":comments[1]}))
        .await;
    assert_eq!(s, 201, "{r}");
    let reply = r["comment"]["id"].as_str().unwrap().to_string();
    let (_, r2) = members[0]
        .client
        .post(&path, json!({"body":"저도요","parent_id":reply}))
        .await;
    assert_eq!(r2["comment"]["parent_id"], comments[1].as_str());
    let (s, b) = members[0].client.post(&path, json!({"body":"  \n "})).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_body")));
    let (s, _) = members[0]
        .client
        .post(&path, json!({"body":"x","parent_id":"999999"}))
        .await;
    assert_eq!(s, 400);
    let (_, list) = members[0].client.get(&path).await;
    let order: Vec<&str> = list["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["many up", "mixed", "one up"]);
    assert_eq!(list["comments"][0]["replies"].as_array().unwrap().len(), 2);
    assert_eq!(list["comments"][0]["my_vote"], 1);
    let (_, p) = app.anon().get(&format!("/api/v1/posts/{id}")).await;
    assert_eq!(p["post"]["comments"], 5);
    // Only the author (or a moderator) deletes a comment.
    let (s, _) = members[3]
        .client
        .delete(&format!("/api/v1/comments/{}", comments[1]))
        .await;
    assert_eq!(s, 403);
    let (s, _) = members[2]
        .client
        .delete(&format!("/api/v1/comments/{}", comments[1]))
        .await;
    assert_eq!(s, 204);
    // Its replies (others') stay, under an empty placeholder that names no one.
    let (_, list) = app.anon().get(&path).await;
    let gone = list["comments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == comments[1].as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (
            gone["deleted"].as_bool(),
            gone["body"].as_str(),
            gone["author"]["username"].as_str()
        ),
        (Some(true), Some(""), Some("")),
        "{gone}"
    );
    assert_eq!(gone["replies"].as_array().unwrap().len(), 2);
    let (_, p) = app.anon().get(&format!("/api/v1/posts/{id}")).await;
    assert_eq!(p["post"]["comments"], 4, "the deleted one is not counted");
    let (s, _) = members[0]
        .client
        .post(&path, json!({"body":"x","parent_id":comments[1]}))
        .await;
    assert_eq!(s, 400, "no replies to a deleted comment");
    // A comment without replies goes altogether.
    let (s, _) = members[1]
        .client
        .delete(&format!("/api/v1/comments/{}", comments[0]))
        .await;
    assert_eq!(s, 204);
    let (_, list) = app.anon().get(&path).await;
    assert!(!list["comments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == comments[0].as_str()));
}

async fn reports_reach_moderators_who_hide_and_delete(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signup("admin").await;
    let mina = app.signup("mina").await;
    let joon = app.signup("joon").await;
    let mod_ = app.signup("modi").await;
    let (s, b) = admin
        .client
        .put("/api/v1/admin/users/modi/role", json!({"role":"moderator"}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["role"], "moderator");
    let (s, _) = mina
        .client
        .put("/api/v1/admin/users/joon/role", json!({"role":"moderator"}))
        .await;
    assert_eq!(s, 403);
    let (_, photo) = upload(&joon, jpeg(40, 30, None, &[]), "image/jpeg").await;
    let photo_url = photo["image"]["variants"]["thumb"]
        .as_str()
        .unwrap()
        .to_string();
    let spam = post(
        &joon,
        json!({"kind":"talk","title":"광고","body":"싸게 팔아요 010-0000-0000","image_ids":[photo["image"]["id"]]}),
    )
    .await;
    let id = spam["id"].as_str().unwrap();
    assert_eq!(app.anon().status(&photo_url).await, 200);
    let (s, _) = mina
        .client
        .post(
            &format!("/api/v1/posts/{id}/reports"),
            json!({"reason":"광고예요"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, b) = mina
        .client
        .post(
            &format!("/api/v1/posts/{id}/reports"),
            json!({"reason":"again"}),
        )
        .await;
    assert_eq!((s, b["error"].as_str()), (409, Some("already_reported")));
    let (s, _) = mina.client.get("/api/v1/reports").await;
    assert_eq!(s, 403, "members do not see the queue");
    let (s, q) = mod_.client.get("/api/v1/reports").await;
    assert_eq!(s, 200, "{q}");
    assert_eq!(q["reports"].as_array().unwrap().len(), 1);
    assert_eq!(q["reports"][0]["reporter"], "mina");
    let rid = q["reports"][0]["id"].as_str().unwrap();
    let (s, _) = mod_
        .client
        .post(
            &format!("/api/v1/reports/{rid}/resolve"),
            json!({"action":"hide"}),
        )
        .await;
    assert_eq!(s, 204);
    // Hidden: gone for everyone but its author and moderators, and out of every feed; its
    // photos too.
    assert_eq!(app.anon().status(&format!("/api/v1/posts/{id}")).await, 404);
    assert_eq!(app.anon().status(&photo_url).await, 404);
    assert_eq!(joon.client.status(&photo_url).await, 200);
    assert_eq!(
        mina.client.status(&format!("/api/v1/posts/{id}")).await,
        404
    );
    let (_, b) = joon.client.get(&format!("/api/v1/posts/{id}")).await;
    assert_eq!(b["post"]["hidden"], true);
    let (_, feed) = app.anon().get("/api/v1/posts").await;
    assert!(feed["posts"].as_array().unwrap().is_empty());
    let (_, q) = mod_.client.get("/api/v1/reports").await;
    assert!(q["reports"].as_array().unwrap().is_empty());
    // The author cannot unhide; a moderator can.
    let (s, _) = joon
        .client
        .patch(&format!("/api/v1/posts/{id}"), json!({"hidden":false}))
        .await;
    assert_eq!(s, 403);
    let (s, _) = mod_
        .client
        .patch(&format!("/api/v1/posts/{id}"), json!({"hidden":false}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(app.anon().status(&format!("/api/v1/posts/{id}")).await, 200);
    // A reported comment, deleted by a moderator.
    let (_, c) = joon
        .client
        .post(
            &format!("/api/v1/posts/{id}/comments"),
            json!({"body":"나쁜 말"}),
        )
        .await;
    let cid = c["comment"]["id"].as_str().unwrap();
    let (s, _) = mina
        .client
        .post(
            &format!("/api/v1/posts/{id}/reports"),
            json!({"reason":"욕설","comment_id":cid}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, q) = admin.client.get("/api/v1/reports").await;
    assert_eq!(q["reports"][0]["comment_id"], cid);
    let rid = q["reports"][0]["id"].as_str().unwrap();
    let (s, _) = admin
        .client
        .post(
            &format!("/api/v1/reports/{rid}/resolve"),
            json!({"action":"delete"}),
        )
        .await;
    assert_eq!(s, 204);
    let (_, list) = app
        .anon()
        .get(&format!("/api/v1/posts/{id}/comments"))
        .await;
    assert!(list["comments"].as_array().unwrap().is_empty());
    // A moderator deletes any post.
    let (s, _) = mod_.client.delete(&format!("/api/v1/posts/{id}")).await;
    assert_eq!(s, 204);
}

async fn a_listing_goes_on_sale_reserved_sold_by_its_seller_alone(backend: Backend) {
    let app: TestApp = spawn_app(backend).await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let other = app.signup("other").await;
    let l = post(
        &seller,
        json!({"kind":"market","title":"자전거","body":"잘 나가요","price":50000}),
    )
    .await;
    let path = format!("/api/v1/posts/{}", l["id"].as_str().unwrap());
    let (s, _) = buyer
        .client
        .patch(&path, json!({"status":"sold","buyer":"buyer"}))
        .await;
    assert_eq!(s, 403, "only the seller");
    let (s, b) = seller
        .client
        .patch(&path, json!({"status":"reserved"}))
        .await;
    assert_eq!(s, 422, "a reservation names its buyer: {b}");
    assert!(b["fields"]["buyer"].is_string());
    let (s, b) = seller
        .client
        .patch(&path, json!({"status":"reserved","buyer":"nobody"}))
        .await;
    assert_eq!(s, 422, "{b}");
    let (s, b) = seller
        .client
        .patch(&path, json!({"status":"reserved","buyer":"buyer"}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (
            b["post"]["status"].as_str(),
            b["post"]["buyer"]["username"].as_str()
        ),
        (Some("reserved"), Some("buyer"))
    );
    let (s, b) = seller
        .client
        .patch(&path, json!({"status":"sold","buyer":"buyer"}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["post"]["status"], "sold");
    // Sold stays sold, and stays visible.
    let (s, b) = seller
        .client
        .patch(&path, json!({"status":"on_sale"}))
        .await;
    assert_eq!((s, b["error"].as_str()), (409, Some("sold")));
    let (_, b) = other.client.get(&path).await;
    assert_eq!(b["post"]["status"], "sold");
    let (s, b) = seller.client.patch(&path, json!({"status":"gone"})).await;
    assert_eq!(s, 422, "{b}");
    let (_, talk) = other
        .client
        .post(
            "/api/v1/posts",
            json!({"kind":"talk","title":"t","body":"b"}),
        )
        .await;
    let tpath = format!("/api/v1/posts/{}", talk["post"]["id"].as_str().unwrap());
    let (s, _) = other
        .client
        .patch(&tpath, json!({"status":"sold","buyer":"buyer"}))
        .await;
    assert_eq!(s, 422, "only listings have a status");
}

async fn contacting_the_seller_opens_one_private_room_per_buyer(backend: Backend) {
    let app = spawn_app(backend).await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let second = app.signup("second").await;
    let stranger = app.signup("stranger").await;
    let l = post(
        &seller,
        json!({"kind":"market","title":"캠핑 의자","body":"두 개","price":20000}),
    )
    .await;
    let contact = format!("/api/v1/posts/{}/contact", l["id"].as_str().unwrap());
    // One buyer pressing twice at once gets one room.
    let (a, b) = tokio::join!(
        buyer.client.post(&contact, json!({})),
        buyer.client.post(&contact, json!({}))
    );
    assert_eq!((a.0, b.0), (201, 201), "{} {}", a.1, b.1);
    let slug = a.1["room"]["slug"].as_str().unwrap().to_string();
    assert_eq!(b.1["room"]["slug"], slug.as_str());
    assert_eq!(a.1["room"]["visibility"], "private");
    let (_, again) = buyer.client.post(&contact, json!({})).await;
    assert_eq!(again["room"]["slug"], slug.as_str());
    // Another buyer gets a room of their own.
    let (s, other) = second.client.post(&contact, json!({})).await;
    assert_eq!(s, 201, "{other}");
    let other_slug = other["room"]["slug"].as_str().unwrap().to_string();
    assert_ne!(other_slug, slug);
    let (s, b) = seller.client.post(&contact, json!({})).await;
    assert_eq!((s, b["error"].as_str()), (409, Some("own_listing")));
    // Nobody else sees the room: not its page, history, socket or the room list.
    for path in [
        format!("/api/v1/rooms/{slug}"),
        format!("/api/v1/rooms/{slug}/messages"),
    ] {
        assert_eq!(stranger.client.status(&path).await, 404, "{path}");
        assert_eq!(app.anon().status(&path).await, 404, "{path}");
        assert_eq!(second.client.status(&path).await, 404, "{path}");
        assert_eq!(buyer.client.status(&path).await, 200, "{path}");
        assert_eq!(seller.client.status(&path).await, 200, "{path}");
    }
    assert_eq!(app.ws_refused(Some(&stranger), &slug).await, 404);
    assert_eq!(app.ws_refused(None, &slug).await, 404);
    let (_, rooms) = app.anon().get("/api/v1/rooms").await;
    assert!(rooms["rooms"].as_array().unwrap().is_empty(), "{rooms}");
    // The seller cannot let someone else in by appointing them.
    let (s, b) = seller
        .client
        .post(
            &format!("/api/v1/rooms/{slug}/moderators"),
            json!({"username":"stranger"}),
        )
        .await;
    assert_eq!((s, b["error"].as_str()), (409, Some("not_a_member")), "{b}");
    assert_eq!(
        stranger
            .client
            .status(&format!("/api/v1/rooms/{slug}"))
            .await,
        404
    );
    // The two chat in it.
    let mut ws_buyer = app.ws(Some(&buyer), &slug, None).await;
    ws_buyer.welcome().await;
    let mut ws_seller = app.ws(Some(&seller), &slug, None).await;
    ws_seller.welcome().await;
    ws_buyer.say("아직 있나요?").await;
    let m = ws_seller.expect("message").await;
    assert_eq!(m["text"], "아직 있나요?", "{m}");
    // The seller sees every buyer's room in one list; each buyer only theirs.
    let (_, list) = seller.client.get("/api/v1/me/contacts").await;
    let mut slugs: Vec<&str> = list["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["room"]["slug"].as_str().unwrap())
        .collect();
    slugs.sort();
    let mut want = vec![slug.as_str(), other_slug.as_str()];
    want.sort();
    assert_eq!(slugs, want);
    assert_eq!(list["contacts"][0]["role"], "seller");
    let (_, mine) = buyer.client.get("/api/v1/me/contacts").await;
    assert_eq!(mine["contacts"].as_array().unwrap().len(), 1);
    assert_eq!(mine["contacts"][0]["buyer"]["username"], "buyer");
    // Sold: no new rooms, the old ones stay.
    let (s, _) = seller
        .client
        .patch(
            &format!("/api/v1/posts/{}", l["id"].as_str().unwrap()),
            json!({"status":"sold","buyer":"buyer"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = stranger.client.post(&contact, json!({})).await;
    assert_eq!((s, b["error"].as_str()), (409, Some("sold")));
    let (s, b) = buyer.client.post(&contact, json!({})).await;
    assert_eq!((s, b["room"]["slug"].as_str()), (201, Some(slug.as_str())));
}

async fn writing_is_paced_and_photos_count_against_the_plan(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signup("admin").await;
    let mina = app.signup("mina").await;
    // Twenty posts at once, then one every few seconds.
    for i in 0..20 {
        post(
            &mina,
            json!({"kind":"talk","title":format!("t{i}"),"body":"b"}),
        )
        .await;
    }
    let (s, b) = mina
        .client
        .post(
            "/api/v1/posts",
            json!({"kind":"talk","title":"one more","body":"b"}),
        )
        .await;
    assert_eq!((s, b["error"].as_str()), (429, Some("rate_limited")), "{b}");
    let (s, _) = admin
        .client
        .post(
            "/api/v1/posts",
            json!({"kind":"talk","title":"mine","body":"b"}),
        )
        .await;
    assert_eq!(s, 201, "another member has their own pace");
    // Photos' served sizes count in the storage plan.
    let (s, b) = admin
        .client
        .post(
            "/api/v1/admin/plans",
            json!({"name":"tiny","storage_bytes":3000}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = admin
        .client
        .put("/api/v1/admin/users/mina/plan", json!({"plan":"tiny"}))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = upload(&mina, jpeg(16, 16, None, &[]), "image/jpeg").await;
    assert_eq!(s, 201, "a small photo fits: {b}");
    let (_, usage) = mina.client.get("/api/v1/me/usage").await;
    assert!(usage["used_bytes"].as_i64().unwrap() > 0, "{usage}");
    let (s, b) = upload(&mina, jpeg(1200, 900, None, &[]), "image/jpeg").await;
    assert_eq!(
        (s, b["error"].as_str()),
        (403, Some("quota_exceeded")),
        "{b}"
    );
}

/// The map's settings reach the UI, and every page's policy lets its tiles in (and only them).
#[tokio::test]
async fn the_map_names_its_tiles_and_pages_allow_them() {
    let policy = |resp: &reqwest::Response| {
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string()
    };
    let app = spawn_with(
        Backend::Sqlite,
        &[
            "--map-tile-url",
            "https://{s}.tiles.example/{z}/{x}/{y}.png",
            "--map-attribution",
            "© <Tiles> & co",
            "--map-center",
            "35.1796, 129.0756",
            "--map-zoom",
            "30",
        ],
    )
    .await;
    let (status, body) = app.anon().get("/api/v1/map").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["map"],
        json!({"tile_url": "https://{s}.tiles.example/{z}/{x}/{y}.png",
               "attribution": "© <Tiles> & co", "max_zoom": 19,
               "center": [35.1796, 129.0756], "zoom": 22})
    );
    for path in ["/c", "/s/nosuchlink"] {
        let resp = reqwest::get(format!("{}{path}", app.base)).await.unwrap();
        let csp = policy(&resp);
        let img = csp
            .split(';')
            .find(|d| d.trim().starts_with("img-src"))
            .unwrap();
        assert_eq!(
            img.trim(),
            "img-src 'self' data: blob: https://*.tiles.example",
            "{path}"
        );
        assert!(csp.contains("script-src 'self';"), "{csp}");
    }

    // No tiles: a blank map, and the policy names no other host.
    let bare = spawn_with(Backend::Sqlite, &["--map-tile-url", ""]).await;
    let (_, body) = bare.anon().get("/api/v1/map").await;
    assert_eq!(body["map"]["tile_url"], Value::Null);
    let resp = reqwest::get(format!("{}/c", bare.base)).await.unwrap();
    assert!(
        policy(&resp).contains("img-src 'self' data: blob:;"),
        "{}",
        policy(&resp)
    );
}
