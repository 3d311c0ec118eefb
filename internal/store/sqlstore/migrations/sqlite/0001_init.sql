-- lightsout schema 1 (SQLite). Times are Unix nanoseconds (0: unset);
-- booleans are 0/1; JSON columns hold text ('' when empty).

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value BLOB NOT NULL
);

CREATE TABLE enclosures (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  name       TEXT    NOT NULL,
  protocol   TEXT    NOT NULL,
  address    TEXT    NOT NULL,
  port       INTEGER NOT NULL,
  username   TEXT    NOT NULL DEFAULT '',
  password   BLOB    NOT NULL DEFAULT x'',
  slots      INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  CONSTRAINT enclosures_name_key UNIQUE (name),
  CONSTRAINT enclosures_address_key UNIQUE (protocol, address, port)
);

CREATE TABLE machines (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  name         TEXT    NOT NULL,
  guid         TEXT    NOT NULL DEFAULT '',
  grp          TEXT    NOT NULL DEFAULT '',
  tags         TEXT    NOT NULL DEFAULT '',
  role         TEXT    NOT NULL DEFAULT '',
  spare        INTEGER NOT NULL DEFAULT 0,
  registering  INTEGER NOT NULL DEFAULT 0,
  enclosure_id INTEGER REFERENCES enclosures (id),
  slot         INTEGER NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  CONSTRAINT machines_name_key UNIQUE (name)
);
CREATE INDEX machines_guid_idx ON machines (guid);
CREATE INDEX machines_grp_idx ON machines (grp);
CREATE INDEX machines_enclosure_idx ON machines (enclosure_id);
CREATE UNIQUE INDEX machines_slot_key ON machines (enclosure_id, slot) WHERE enclosure_id IS NOT NULL AND slot > 0;

CREATE TABLE machine_tags (
  machine_id INTEGER NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
  tag        TEXT    NOT NULL,
  PRIMARY KEY (machine_id, tag)
);
CREATE INDEX machine_tags_tag_idx ON machine_tags (tag);

CREATE TABLE accounts (
  id                     INTEGER PRIMARY KEY AUTOINCREMENT,
  machine_id             INTEGER NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
  protocol               TEXT    NOT NULL,
  address                TEXT    NOT NULL,
  port                   INTEGER NOT NULL,
  username               TEXT    NOT NULL DEFAULT '',
  password               BLOB    NOT NULL DEFAULT x'',
  privilege              TEXT    NOT NULL,
  cipher_suite           INTEGER NOT NULL DEFAULT 0,
  credentials_changed_at INTEGER NOT NULL,
  created_at             INTEGER NOT NULL,
  updated_at             INTEGER NOT NULL,
  CONSTRAINT accounts_address_key UNIQUE (protocol, address, port)
);
CREATE INDEX accounts_machine_idx ON accounts (machine_id);

CREATE TABLE channel_states (
  account_id INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
  state      TEXT    NOT NULL,
  reason     TEXT    NOT NULL DEFAULT '',
  conditions TEXT    NOT NULL DEFAULT '',
  message    TEXT    NOT NULL DEFAULT '',
  since      INTEGER NOT NULL,
  checked_at INTEGER NOT NULL,
  guid       TEXT    NOT NULL DEFAULT '',
  power      TEXT    NOT NULL DEFAULT '',
  evidence   TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE transitions (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  at         INTEGER NOT NULL,
  from_state TEXT    NOT NULL,
  to_state   TEXT    NOT NULL,
  reason     TEXT    NOT NULL DEFAULT '',
  conditions TEXT    NOT NULL DEFAULT '',
  message    TEXT    NOT NULL DEFAULT '',
  evidence   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX transitions_account_idx ON transitions (account_id, id);

CREATE TABLE events (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  at       INTEGER NOT NULL,
  code     TEXT    NOT NULL,
  severity TEXT    NOT NULL,
  source   TEXT    NOT NULL DEFAULT '',
  message  TEXT    NOT NULL DEFAULT '',
  count    INTEGER NOT NULL DEFAULT 1,
  last_at  INTEGER NOT NULL,
  data     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_dedup_idx ON events (code, source, last_at);
CREATE INDEX events_last_at_idx ON events (last_at, id);

CREATE TABLE audit (
  id     INTEGER PRIMARY KEY AUTOINCREMENT,
  at     INTEGER NOT NULL,
  actor  TEXT    NOT NULL,
  action TEXT    NOT NULL,
  target TEXT    NOT NULL DEFAULT '',
  detail TEXT    NOT NULL DEFAULT '',
  result TEXT    NOT NULL,
  error  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_target_idx ON audit (target, id);

CREATE TABLE tokens (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  name       TEXT    NOT NULL,
  role       TEXT    NOT NULL,
  hash       BLOB    NOT NULL,
  created_at INTEGER NOT NULL,
  revoked    INTEGER NOT NULL DEFAULT 0,
  CONSTRAINT tokens_name_key UNIQUE (name),
  CONSTRAINT tokens_hash_key UNIQUE (hash)
);
