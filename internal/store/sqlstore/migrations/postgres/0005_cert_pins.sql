-- Redfish certificate pins (trust on first use): the SHA-256 of the leaf
-- certificate a machine's Redfish BMC presented on first contact. An admin
-- replaces it to accept a new certificate. Times are Unix nanoseconds.

CREATE TABLE cert_pins (
  machine_id BIGINT  PRIMARY KEY REFERENCES machines (id) ON DELETE CASCADE,
  sha256     TEXT    NOT NULL,
  pinned_at  BIGINT  NOT NULL
);
