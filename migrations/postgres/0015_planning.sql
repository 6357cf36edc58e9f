-- Planning together in a room: invite links that make people members, candidate pins on the
-- room's map, and polls. Times are unix milliseconds; coordinates are 1e-7 degrees, as posts'.

-- /i/{code}: whoever accepts becomes a member of the room, until the link expires, runs out of
-- uses or is revoked (revoked links stay, so they can say so).
CREATE TABLE room_invites (
    id BIGSERIAL PRIMARY KEY,
    room_id BIGINT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    code TEXT NOT NULL UNIQUE,
    created_by BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at BIGINT,
    max_uses BIGINT,
    uses BIGINT NOT NULL DEFAULT 0,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX room_invites_room ON room_invites(room_id);

-- A candidate place on the room's map: a place post's, or a named point.
CREATE TABLE room_pins (
    id BIGSERIAL PRIMARY KEY,
    room_id BIGINT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    post_id BIGINT REFERENCES posts(id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    lat_e7 BIGINT NOT NULL,
    lng_e7 BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX room_pins_room ON room_pins(room_id);

-- options and pins are JSON arrays (pins: the pin id behind each option, or null).
CREATE TABLE polls (
    id BIGSERIAL PRIMARY KEY,
    room_id BIGINT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    created_by BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    question TEXT NOT NULL,
    options TEXT NOT NULL,
    pins TEXT NOT NULL,
    mode TEXT NOT NULL,
    anonymous BIGINT NOT NULL,
    results TEXT NOT NULL,
    closes_at BIGINT,
    closed_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX polls_room ON polls(room_id);
CREATE INDEX polls_open ON polls(closes_at) WHERE closed_at IS NULL;

-- One ballot per member and poll (a new vote replaces it); choices is a JSON array of option
-- indexes, in order of preference for ranked polls.
CREATE TABLE poll_votes (
    poll_id BIGINT NOT NULL REFERENCES polls(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    choices TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (poll_id, user_id)
);

-- A chat line the server writes (a poll's result) rather than a member.
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'chat';
