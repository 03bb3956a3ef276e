-- Push, not only poll: every revocation also notifies the channel `auth_revocations` (delivered
-- when its transaction commits, once per transaction however many sessions it revoked), so every
-- replica's feed reads the log at once instead of at its next poll. Replaces the function of
-- 0004_revocation_log; the trigger stays. Expand-only: a release without a listener ignores it.
CREATE OR REPLACE FUNCTION log_session_revocation() RETURNS trigger AS $$
BEGIN
    INSERT INTO revocation_log (session_id, revoked_at) VALUES (NEW.session_id, NEW.revoked_at);
    PERFORM pg_notify('auth_revocations', '');
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
