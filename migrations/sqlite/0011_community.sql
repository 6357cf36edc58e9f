-- The community beside the rooms: posts (place info, reviews, market listings, talk), their
-- photos, tags, likes, favourites, comments and reports. Times are unix milliseconds.
--
-- `hot` is the time-invariant popularity key (log10 of the likes plus the creation time over a
-- constant, scaled to an integer; see domain::rank): it is written with every like in the same
-- transaction, so no job can leave it stale. `search_text` is the normalised title, body, tags
-- and place, and `post_grams` its one- and two-character pieces, so a Korean word of two
-- syllables is found by an index (see domain::search). Positions are degrees × 10⁷ (1 cm),
-- integers so both databases compare them exactly.
CREATE TABLE posts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    author_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '',
    place_id BIGINT REFERENCES posts(id) ON DELETE CASCADE,
    rating BIGINT,
    price BIGINT,
    item_condition TEXT,
    neighbourhood TEXT,
    status TEXT,
    buyer_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
    lat_e7 BIGINT,
    lng_e7 BIGINT,
    likes BIGINT NOT NULL DEFAULT 0,
    comments BIGINT NOT NULL DEFAULT 0,
    hot BIGINT NOT NULL,
    search_text TEXT NOT NULL,
    hidden_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX posts_hot ON posts(hot DESC, id DESC);
CREATE INDEX posts_kind_hot ON posts(kind, hot DESC, id DESC);
CREATE INDEX posts_kind_new ON posts(kind, id DESC);
CREATE INDEX posts_created ON posts(created_at);
CREATE INDEX posts_author ON posts(author_id, id DESC);
CREATE INDEX posts_place ON posts(place_id, id DESC);
CREATE INDEX posts_lat ON posts(lat_e7) WHERE lat_e7 IS NOT NULL;

CREATE TABLE places (
    post_id BIGINT PRIMARY KEY REFERENCES posts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    address TEXT,
    hours TEXT,
    phone TEXT,
    rating_sum BIGINT NOT NULL DEFAULT 0,
    rating_count BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE post_tags (
    tag TEXT NOT NULL,
    post_id BIGINT NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    PRIMARY KEY (tag, post_id)
);
CREATE INDEX post_tags_post ON post_tags(post_id);

CREATE TABLE post_grams (
    gram TEXT NOT NULL,
    post_id BIGINT NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    PRIMARY KEY (gram, post_id)
);
CREATE INDEX post_grams_post ON post_grams(post_id);

CREATE TABLE post_likes (
    post_id BIGINT NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX post_likes_user ON post_likes(user_id);
CREATE INDEX post_likes_created ON post_likes(created_at);

CREATE TABLE post_favorites (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    post_id BIGINT NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, post_id)
);
CREATE INDEX post_favorites_post ON post_favorites(post_id);

CREATE TABLE comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    post_id BIGINT NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    author_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    parent_id BIGINT REFERENCES comments(id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    up BIGINT NOT NULL DEFAULT 0,
    down BIGINT NOT NULL DEFAULT 0,
    hidden_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX comments_post ON comments(post_id, id);
CREATE INDEX comments_parent ON comments(parent_id);
CREATE INDEX comments_author ON comments(author_id);

CREATE TABLE comment_votes (
    comment_id BIGINT NOT NULL REFERENCES comments(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    vote BIGINT NOT NULL,
    PRIMARY KEY (comment_id, user_id)
);
CREATE INDEX comment_votes_user ON comment_votes(user_id);

CREATE TABLE reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    post_id BIGINT NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    comment_id BIGINT REFERENCES comments(id) ON DELETE CASCADE,
    reporter_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT,
    resolved_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    resolution TEXT
);
CREATE INDEX reports_open ON reports(resolved_at, id);
CREATE INDEX reports_post ON reports(post_id);
CREATE INDEX reports_comment ON reports(comment_id);
CREATE INDEX reports_reporter ON reports(reporter_id);

-- Photos: the served sizes live in the blob store under images/{public_id}/{size}.{ext}.
CREATE TABLE images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL UNIQUE,
    owner_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    post_id BIGINT REFERENCES posts(id) ON DELETE SET NULL,
    position BIGINT NOT NULL DEFAULT 0,
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    thumbhash TEXT NOT NULL,
    ext TEXT NOT NULL,
    sizes TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX images_post ON images(post_id, position);
CREATE INDEX images_owner ON images(owner_id, created_at);
