-- The request id and W3C trace context of the request that recorded an event, published as Kafka
-- record headers. Expand-only: binaries that do not know the columns keep working.
ALTER TABLE outbox_events ADD COLUMN traceparent TEXT;
ALTER TABLE outbox_events ADD COLUMN request_id TEXT;
