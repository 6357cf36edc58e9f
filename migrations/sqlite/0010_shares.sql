-- Share links: /s/{code} lets anyone with the link watch one video (private ones too), until
-- it expires, runs out of views or is revoked (revoked links stay, so they can say so).
-- password_hash is argon2id; times are unix milliseconds.
CREATE TABLE shares (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL UNIQUE,
    video_id BIGINT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    created_by BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    password_hash TEXT,
    expires_at BIGINT,
    max_views BIGINT,
    views BIGINT NOT NULL DEFAULT 0,
    last_view_at BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX shares_video ON shares(video_id);
