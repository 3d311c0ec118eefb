-- Agents, second step: certificates are renewed over the agent's own
-- connection, and an agent also holds a host link certificate (kind
-- 'link') that must never open the agent channel; managers sharing a
-- database list the agent listener addresses they advertise, which the
-- agents rediscover. Times are Unix nanoseconds.

ALTER TABLE agent_certs ADD COLUMN kind TEXT NOT NULL DEFAULT 'agent';

CREATE TABLE agent_managers (
  address TEXT   NOT NULL PRIMARY KEY,
  seen    BIGINT NOT NULL
);
