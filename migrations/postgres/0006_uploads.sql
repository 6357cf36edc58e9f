-- Resumable uploads (tus 1.0.0). Each PATCH stores its bytes as one part blob,
-- `uploads/{id}/{offset}`; `received` is where the next part starts. An upload not finished by
-- `expires_at` is deleted with its parts.
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    length BIGINT NOT NULL,
    received BIGINT NOT NULL DEFAULT 0,
    filename TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX uploads_user ON uploads(user_id);
CREATE INDEX uploads_expiry ON uploads(expires_at);
