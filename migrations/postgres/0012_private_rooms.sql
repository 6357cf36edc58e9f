-- Private rooms: seen only by their members (and the owner, moderators and admins); others get
-- 404 everywhere. The first ones are the market's buyer–seller rooms: one per listing and
-- buyer (the primary key makes a second press of "contact" find the same room).
ALTER TABLE rooms ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public';

CREATE TABLE room_members (
    room_id BIGINT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members(user_id);

CREATE TABLE market_contacts (
    post_id BIGINT NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    buyer_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    room_id BIGINT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (post_id, buyer_id)
);
CREATE INDEX market_contacts_buyer ON market_contacts(buyer_id);
CREATE INDEX market_contacts_room ON market_contacts(room_id);
