-- Leases: one replica at a time runs a singleton job (the Kafka relay, which must keep per-user
-- order; the cleanup). A replica holds a lease by renewing it; a crashed holder's lease expires.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO leases (name, holder, expires_at) VALUES ('kafka-relay', '', 0), ('cleanup', '', 0);
