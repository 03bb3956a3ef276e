-- The revocation feed reads recently revoked sessions by time.
CREATE INDEX sessions_revoked_idx ON sessions (revoked_at);
