-- Initial schema (SQLite). Ids are UUID text, times are unix seconds: the same column types as the
-- PostgreSQL schema so one query text serves both databases.

CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    role          INTEGER NOT NULL DEFAULT 0,          -- 0 user, 1 admin, 2 moderator (old service)
    email         TEXT NOT NULL UNIQUE,                -- normalised (trimmed, lowercased)
    password_hash TEXT NOT NULL,
    name          TEXT NOT NULL,
    country       TEXT NOT NULL,
    locale        TEXT,                                -- preferred email language (ru, en)
    is_active     INTEGER NOT NULL DEFAULT 1,
    last_login    INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- One row per login; it is also the refresh-token family (one family per session).
CREATE TABLE sessions (
    session_id         TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    user_agent         TEXT,
    device_name        TEXT NOT NULL,
    ip                 TEXT,
    location           TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    last_activity      INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    revoked_at         INTEGER,
    refresh_generation INTEGER NOT NULL DEFAULT 0,     -- generation of the current refresh token
    refresh_key        TEXT NOT NULL,                  -- HMAC key deriving the next refresh token
    rotated_at         INTEGER NOT NULL                -- when the current generation was issued
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Every refresh token ever issued, by hash: an old generation coming back is recognised as reuse.
CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,                      -- sha256 hex; the token itself is never stored
    session_id  TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    generation  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Email verification and password reset tokens; a new request replaces the previous one.
CREATE TABLE one_time_tokens (
    purpose     TEXT NOT NULL,                         -- verification | reset
    email       TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (purpose, email)
);

-- Transactional outbox for domain events (relayed to Kafka when configured).
CREATE TABLE outbox_events (
    event_id        TEXT PRIMARY KEY,
    topic           TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    user_id         TEXT,                              -- the Kafka key: events are ordered per user
    payload         TEXT NOT NULL,                     -- JSON envelope
    created_at      INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',   -- pending | delivered | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_events_pending_idx ON outbox_events (status, next_attempt_at);

-- Transactional outbox for emails (delivered to SMTP, or to a folder in the embedded mode).
CREATE TABLE email_outbox (
    email_id        TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',   -- pending | sent | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    last_error      TEXT
);
CREATE INDEX email_outbox_pending_idx ON email_outbox (status, next_attempt_at);
