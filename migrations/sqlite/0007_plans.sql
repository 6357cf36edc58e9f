-- Storage plans: what a member may keep and upload. A missing limit (NULL) is no limit. A
-- member without a plan of their own gets the configured default plan (`default_plan`).
CREATE TABLE plans (
    name TEXT PRIMARY KEY,
    storage_bytes BIGINT,
    max_file_bytes BIGINT,
    max_duration_s BIGINT,
    uploads_per_day BIGINT,
    created_at BIGINT NOT NULL
);
CREATE TABLE user_plans (
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    plan TEXT NOT NULL REFERENCES plans(name) ON DELETE CASCADE
);
CREATE INDEX uploads_user_created ON uploads(user_id, created_at);
