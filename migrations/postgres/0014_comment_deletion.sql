-- A deleted comment that has replies stays as a placeholder ("deleted"), so the replies keep
-- their place; one without replies is removed.
ALTER TABLE comments ADD COLUMN deleted_at BIGINT;
