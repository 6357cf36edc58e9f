-- Work that must survive a restart, in the database on both backends. A worker claims a job
-- with a lease it keeps renewing; a job whose lease ran out (its node died) is claimed again.
-- A job row lives only while its work is pending: it is deleted when done or given up.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX jobs_lease ON jobs(lease_until, id);
CREATE INDEX jobs_subject ON jobs(subject);

-- Uploaded videos: the upload they came from, processing progress (per mille) and the reason
-- when it failed, the picture size, bytes kept (the original and everything made from it),
-- who may watch ('public', 'unlisted' or 'private'; recordings stay public as before).
ALTER TABLE videos ADD COLUMN upload_id TEXT;
ALTER TABLE videos ADD COLUMN error TEXT;
ALTER TABLE videos ADD COLUMN progress BIGINT NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN width BIGINT NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN height BIGINT NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN original_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN has_storyboard BIGINT NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public';
ALTER TABLE videos ADD COLUMN filename TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX videos_upload ON videos(upload_id);
