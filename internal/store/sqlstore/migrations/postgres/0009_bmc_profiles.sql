-- Cipher suite negotiation (docs/interop.md): an account may name the
-- cipher suites it allows, strongest first ("17,3"; empty: the server's
-- default), and the monitor keeps what it learned about each BMC — the
-- suite that worked and the quirks met (no presence ping, ...) — so a
-- restart neither renegotiates nor forgets. The profile belongs to the
-- account's address: it is dropped when the address changes.
-- Times are Unix nanoseconds.

ALTER TABLE accounts ADD COLUMN cipher_suites TEXT NOT NULL DEFAULT '';

CREATE TABLE bmc_profiles (
  account_id BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
  address    TEXT    NOT NULL,
  suite      BIGINT NOT NULL DEFAULT 0,
  quirks     TEXT    NOT NULL DEFAULT '',
  learned_at BIGINT NOT NULL
);
