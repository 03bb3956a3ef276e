-- The revocation feed in commit order. A revocation's timestamp is taken before its transaction
-- commits, so two replicas (or a lock wait) can commit an earlier stamp after a later one: a feed
-- that follows `sessions.revoked_at` can skip it. Every revocation is logged here by a trigger
-- (no code path can forget it), with the id of its transaction: the feed reads each transaction
-- once it is older than every running one (`txid_snapshot_xmin`), which no later commit can
-- precede, and streams committed rows of younger ones at once (de-duplicated by `seq`).
CREATE TABLE revocation_log (
    seq BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    txid BIGINT NOT NULL DEFAULT txid_current()
);
CREATE INDEX revocation_log_txid_idx ON revocation_log (txid);
CREATE INDEX revocation_log_revoked_at_idx ON revocation_log (revoked_at);

CREATE FUNCTION log_session_revocation() RETURNS trigger AS $$
BEGIN
    INSERT INTO revocation_log (session_id, revoked_at) VALUES (NEW.session_id, NEW.revoked_at);
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER sessions_revocation_log AFTER UPDATE OF revoked_at ON sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION log_session_revocation();
