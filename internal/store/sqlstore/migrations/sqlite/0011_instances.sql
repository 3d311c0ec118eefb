-- Scale-out (docs/scale-out.md): every running server registers here with
-- its name, the zones it serves, its address for its peers and a lease it
-- renews; one whose lease lapsed is dead. view is the list of members the
-- instance last computed its share of the fleet over (the channels it may
-- still be touching: a new owner waits until the old owner's view moved
-- on or its lease lapsed). A machine belongs to a zone ('' is the default
-- zone). SQLite stays single-instance: the table holds that one server.
-- Times are Unix nanoseconds.

CREATE TABLE instances (
  name         TEXT    PRIMARY KEY,
  zones        TEXT    NOT NULL DEFAULT '',
  peer_address TEXT    NOT NULL DEFAULT '',
  source       TEXT    NOT NULL DEFAULT '',
  version      TEXT    NOT NULL DEFAULT '',
  view         TEXT    NOT NULL DEFAULT '',
  channels     INTEGER NOT NULL DEFAULT 0,
  checks       INTEGER NOT NULL DEFAULT 0,
  started_at   INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  lease_until  INTEGER NOT NULL
);

ALTER TABLE machines ADD COLUMN zone TEXT NOT NULL DEFAULT '';
CREATE INDEX machines_zone_idx ON machines (zone);
