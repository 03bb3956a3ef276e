-- The revocation feed in commit order. A revocation's timestamp is taken before its transaction
-- commits, so a lock wait can commit an earlier stamp after a later one: a feed that follows
-- `sessions.revoked_at` can skip it. Every revocation is logged here by a trigger (no code path
-- can forget it). SQLite has one writer at a time, so AUTOINCREMENT numbers rows in commit order
-- and the feed follows `seq`.
CREATE TABLE revocation_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX revocation_log_revoked_at_idx ON revocation_log (revoked_at);

CREATE TRIGGER sessions_revocation_log AFTER UPDATE OF revoked_at ON sessions
    FOR EACH ROW WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO revocation_log (session_id, revoked_at) VALUES (NEW.session_id, NEW.revoked_at);
END;
