-- Where an account has signed in before: a browser (the hash of its `moim_device` cookie) or a
-- client address. Failed log-ins from these do not count toward the account's lock-out, so
-- strangers guessing a password cannot lock its owner out.
CREATE TABLE login_trust (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('device', 'address')),
    value TEXT NOT NULL,
    last_ok_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind, value)
);
CREATE INDEX login_trust_age ON login_trust(last_ok_at);
