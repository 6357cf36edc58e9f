-- Sign-in through outside providers: an account's identity at a provider is the pair
-- (provider, subject), never an e-mail address. `email` is kept only when the provider said it
-- was verified (for providers the operator trusts to link by it). An account made through a
-- provider has an empty password_hash until its owner sets a password.
CREATE TABLE user_identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email TEXT,
    linked_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE UNIQUE INDEX user_identities_user ON user_identities(user_id, provider);
CREATE INDEX user_identities_email ON user_identities(email);

-- The `state` of every sign-in that came back, until its cookie would have expired: a state
-- seen twice is refused (the flow's cookie alone could be replayed).
CREATE TABLE signin_states_used (
    state_hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX signin_states_used_expiry ON signin_states_used(expires_at);
