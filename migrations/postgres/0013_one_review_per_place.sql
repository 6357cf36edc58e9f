-- One review per member and place, kept by the database too (two requests at once cannot both
-- pass the check).
CREATE UNIQUE INDEX posts_one_review ON posts(author_id, place_id) WHERE kind = 'review';
