-- The pieces an upload accepted, in order: each attempt writes its own blob, and only the one
-- whose offset update won is recorded here (a losing attempt deletes only its own blob).
CREATE TABLE upload_pieces (
    upload_id TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    start_at BIGINT NOT NULL,
    length BIGINT NOT NULL,
    blob_key TEXT NOT NULL,
    PRIMARY KEY (upload_id, start_at)
);
-- When uploads were started, for uploads per day: kept a day even if the upload is cancelled.
CREATE TABLE upload_starts (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    started_at BIGINT NOT NULL
);
CREATE INDEX upload_starts_user ON upload_starts(user_id, started_at);
