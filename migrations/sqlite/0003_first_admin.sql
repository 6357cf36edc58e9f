-- Who became the first admin: one row at most (id is always 1), so of several accounts created
-- at the same moment exactly one inserts it and becomes admin, on every backend.
CREATE TABLE first_admin (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    user_id BIGINT NOT NULL REFERENCES users(id)
);
INSERT INTO first_admin (id, user_id)
    SELECT 1, id FROM users WHERE role = 'admin' ORDER BY id LIMIT 1;
