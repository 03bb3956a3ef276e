-- Initial schema (PostgreSQL). Ids are UUID text and times are unix seconds (BIGINT), the same
-- column types as the SQLite schema, so one query text serves both databases.

CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    role          BIGINT NOT NULL DEFAULT 0,          -- 0 user, 1 admin, 2 moderator (old service)
    email         VARCHAR(254) NOT NULL UNIQUE,                -- normalised (trimmed, lowercased)
    password_hash TEXT NOT NULL,
    name          VARCHAR(255) NOT NULL,
    country       VARCHAR(100) NOT NULL,
    locale        TEXT,                                -- preferred email language (ru, en)
    is_active     BIGINT NOT NULL DEFAULT 1,
    last_login    BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- One row per login; it is also the refresh-token family (one family per session).
CREATE TABLE sessions (
    session_id         TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    user_agent         TEXT,
    device_name        TEXT NOT NULL,
    ip                 TEXT,
    location           TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    last_activity      BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    revoked_at         BIGINT,
    refresh_generation BIGINT NOT NULL DEFAULT 0,     -- generation of the current refresh token
    refresh_key        TEXT NOT NULL,                  -- HMAC key deriving the next refresh token
    rotated_at         BIGINT NOT NULL                -- when the current generation was issued
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Every refresh token ever issued, by hash: an old generation coming back is recognised as reuse.
CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,                      -- sha256 hex; the token itself is never stored
    session_id  TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    generation  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Email verification and password reset tokens; a new request replaces the previous one.
CREATE TABLE one_time_tokens (
    purpose     TEXT NOT NULL,                         -- verification | reset
    email       TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (purpose, email)
);

-- Transactional outbox for domain events (relayed to Kafka when configured).
CREATE TABLE outbox_events (
    event_id        TEXT PRIMARY KEY,
    topic           TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    user_id         TEXT,                              -- the Kafka key: events are ordered per user
    payload         TEXT NOT NULL,                     -- JSON envelope
    created_at      BIGINT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',   -- pending | delivered | failed
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
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
    created_at      BIGINT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',   -- pending | sent | dead
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX email_outbox_pending_idx ON email_outbox (status, next_attempt_at);
