-- Live broadcasting: stream keys per room, and recordings as videos. Times are unix milliseconds.
CREATE TABLE stream_keys (
    room_id BIGINT PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
    stream_key TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

ALTER TABLE rooms ADD COLUMN record_broadcasts BIGINT NOT NULL DEFAULT 1;

-- status is 'processing', 'ready' or 'failed'; source is 'live' (a recording) or 'upload'.
CREATE TABLE videos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL UNIQUE,
    owner_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    room_id BIGINT REFERENCES rooms(id) ON DELETE SET NULL,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    duration_ms BIGINT NOT NULL DEFAULT 0,
    has_thumbnail BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX videos_owner ON videos(owner_id, created_at);
