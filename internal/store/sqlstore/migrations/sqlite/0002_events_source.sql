-- Events listed by source (GET /api/v1/events?source=M, the console's
-- per-machine view) without scanning the whole table.
CREATE INDEX events_source_idx ON events (source, last_at);
