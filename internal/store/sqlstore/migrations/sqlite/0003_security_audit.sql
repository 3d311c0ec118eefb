-- BMC security audit (internal/audit): the latest report per OOB account
-- and the history of changes of its findings. Times are Unix nanoseconds.

CREATE TABLE security_reports (
  account_id   INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
  audited_at   INTEGER NOT NULL DEFAULT 0,
  attempted_at INTEGER NOT NULL DEFAULT 0,
  findings     TEXT    NOT NULL DEFAULT '',
  report       TEXT    NOT NULL DEFAULT '',
  error        TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE security_changes (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  at         INTEGER NOT NULL,
  findings   TEXT    NOT NULL DEFAULT '',
  added      TEXT    NOT NULL DEFAULT '',
  removed    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX security_changes_account_idx ON security_changes (account_id, id);
