-- The confusable skeleton (Unicode TS #39) of each username's lookup key, one account per
-- skeleton: `аdmin` with a Cyrillic `а`, or `rnoim` next to `moim`, cannot be made. Accounts
-- made before this table get their row when moim starts (the skeleton is computed in Rust);
-- where two of them share a skeleton, the older account holds it.
CREATE TABLE username_skeletons (
    skeleton TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE
);
CREATE INDEX username_skeletons_user ON username_skeletons(user_id);
