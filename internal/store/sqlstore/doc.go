// Package sqlstore persists the model of package store — the manager's
// inventory, channel states, state history, events, audit log and API
// tokens — in embedded SQLite (default, pure Go) or PostgreSQL. Both run
// the same embedded migrations and the same SQL (placeholders are
// rewritten per dialect). Every write that returns nil is committed
// durably: a crash (kill -9) after a method returns loses nothing it
// wrote.
//
// Passwords are encrypted at rest with the [secret.Box] given to [Open].
// It exists apart from package store so that the model stays pure: the
// consumers that only name records do not import database/sql or a
// driver.
package sqlstore
