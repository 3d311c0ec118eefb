-- Listings that cost O(page), not O(fleet) (GET /api/v1/machines, issue
-- 17): every filter is served by an index in machine-ID order, so a page
-- reads about as many rows as it returns.
--
-- channel_index mirrors each account's stored state and reason beside its
-- machine ('Unknown' until the first saved state), written with the
-- account and with every saved state; the state and reason filters walk it
-- by (state, machine_id). It is a table of its own so that a state change
-- does not update accounts (whose changes are announced to other
-- instances, 0011).
CREATE TABLE channel_index (
  account_id BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
  machine_id BIGINT NOT NULL,
  state      TEXT   NOT NULL DEFAULT 'Unknown',
  reason     TEXT   NOT NULL DEFAULT ''
);
INSERT INTO channel_index (account_id, machine_id, state, reason)
  SELECT a.id, a.machine_id, COALESCE(s.state, 'Unknown'), COALESCE(s.reason, '')
  FROM accounts a LEFT JOIN channel_states s ON s.account_id = a.id;
CREATE INDEX channel_index_state_idx ON channel_index (state, machine_id);
CREATE INDEX channel_index_reason_idx ON channel_index (reason, machine_id);
CREATE INDEX channel_index_state_reason_idx ON channel_index (state, reason, machine_id);
CREATE INDEX machine_tags_tag_machine_idx ON machine_tags (tag, machine_id);
-- PostgreSQL's b-tree on (x) returns equal keys in no ID order: the
-- group, zone and enclosure filters need the ID in the index. The name
-- prefix is a range of the names in byte order (COLLATE "C"), whatever
-- the database's collation.
CREATE INDEX machines_grp_id_idx ON machines (grp, id);
CREATE INDEX machines_zone_id_idx ON machines (zone, id);
CREATE INDEX machines_enclosure_id_idx ON machines (enclosure_id, id);
CREATE INDEX machines_name_c_idx ON machines ((name COLLATE "C"));
