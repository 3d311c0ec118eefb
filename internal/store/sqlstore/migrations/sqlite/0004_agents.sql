-- Agents (internal/agent): enrolled host agents, the client certificates
-- the manager's CA issued them, and one-time join tokens (SHA-256 of the
-- secret only). Times are Unix nanoseconds; 0 is never.

CREATE TABLE agents (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  name         TEXT    NOT NULL UNIQUE,
  enrolled_at  BIGINT  NOT NULL,
  version      TEXT    NOT NULL DEFAULT '',
  capabilities TEXT    NOT NULL DEFAULT '',
  address      TEXT    NOT NULL DEFAULT '',
  last_seen    BIGINT  NOT NULL DEFAULT 0,
  revoked_at   BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE agent_certs (
  serial      TEXT    NOT NULL PRIMARY KEY,
  agent_id    BIGINT  NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  fingerprint TEXT    NOT NULL UNIQUE,
  issued_at   BIGINT  NOT NULL,
  not_after   BIGINT  NOT NULL,
  revoked_at  BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX agent_certs_agent_idx ON agent_certs (agent_id);

CREATE TABLE agent_join_tokens (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  hash       BLOB   NOT NULL UNIQUE,
  created_at BIGINT  NOT NULL,
  expires_at BIGINT  NOT NULL,
  used_at    BIGINT  NOT NULL DEFAULT 0,
  agent_id   BIGINT  NOT NULL DEFAULT 0
);
