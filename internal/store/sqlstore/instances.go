package sqlstore

import (
	"context"
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// nowSQL is the database's clock in Unix nanoseconds.
func (d *dialect) nowSQL() string {
	if d.name == "postgres" {
		return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000000 AS BIGINT)"
	}
	return "CAST((julianday('now') - 2440587.5) * 86400000000000 AS INTEGER)"
}

func joinList(l []string) string {
	if l == nil {
		return ""
	}
	return "," + strings.Join(l, ",")
}

// splitList reverses joinList: "" is nil, "," is an empty (non-nil) list.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	if s == "," {
		return []string{}
	}
	return strings.Split(s[1:], ",")
}

// Heartbeat registers or renews in as a member: its lease runs for lease
// from now by the database's clock. The returned Instance is the stored
// row (StartedAt kept from the first registration unless restart).
// restart: a new process takes the name (StartedAt and Checks reset).
func (db *DB) Heartbeat(ctx context.Context, in Instance, lease time.Duration, restart bool) (Instance, error) {
	if in.Name == "" || strings.ContainsAny(in.Name, ", \t\n") {
		return Instance{}, &FieldError{Field: "name", Reason: fmt.Sprintf("%q: an instance name is not empty and has no commas or spaces", in.Name)}
	}
	for _, z := range in.Zones {
		if z == "" || strings.ContainsAny(z, ", \t\n") {
			return Instance{}, &FieldError{Field: "zones", Reason: fmt.Sprintf("%q: a zone name is not empty and has no commas or spaces", z)}
		}
	}
	if lease <= 0 {
		return Instance{}, &FieldError{Field: "lease", Reason: "must be positive"}
	}
	nowSQL := db.d.nowSQL()
	started := "instances.started_at"
	if restart {
		started = "excluded.started_at"
	}
	err := db.tx(ctx, func(x q) error {
		_, err := x.exec(ctx, `INSERT INTO instances (name, zones, peer_address, source, version, view, channels, checks, started_at, heartbeat_at, lease_until)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, `+nowSQL+`, `+nowSQL+`, `+nowSQL+` + ?)
ON CONFLICT (name) DO UPDATE SET zones = excluded.zones, peer_address = excluded.peer_address, source = excluded.source,
 version = excluded.version, view = excluded.view, channels = excluded.channels, checks = excluded.checks,
 started_at = `+started+`, heartbeat_at = excluded.heartbeat_at, lease_until = excluded.lease_until`,
			in.Name, joinList(in.Zones), in.PeerAddress, in.Source, in.Version, joinList(in.View), in.Channels, in.Checks, int64(lease))
		return mapErr(err, in.Name)
	})
	if err != nil {
		return Instance{}, err
	}
	l, err := db.instances(ctx, db.read(), "WHERE name = ?", in.Name)
	if err != nil {
		return Instance{}, err
	}
	if len(l) == 0 {
		return Instance{}, ErrNotFound
	}
	return l[0], nil
}

// Instances lists every registered instance, live or not, by name.
func (db *DB) Instances(ctx context.Context) ([]Instance, error) {
	return db.instances(ctx, db.read(), "")
}

// Leave removes an instance's row (a clean stop): its peers need not wait
// for its lease to lapse.
func (db *DB) Leave(ctx context.Context, name string) error {
	return db.tx(ctx, func(x q) error {
		_, err := x.exec(ctx, `DELETE FROM instances WHERE name = ?`, name)
		return mapErr(err, name)
	})
}

// PruneInstances deletes instances whose lease lapsed before before.
func (db *DB) PruneInstances(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, func(x q) error {
		res, err := x.exec(ctx, `DELETE FROM instances WHERE lease_until < ?`, ts(before))
		if err != nil {
			return mapErr(err, "")
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

func (db *DB) instances(ctx context.Context, x q, where string, args ...any) ([]Instance, error) {
	rows, err := x.query(ctx, `SELECT name, zones, peer_address, source, version, view, channels, checks, started_at, heartbeat_at, lease_until,
 CASE WHEN lease_until > `+db.d.nowSQL()+` THEN 1 ELSE 0 END FROM instances `+where+` ORDER BY name`, args...)
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		var in Instance
		var zones, view string
		var started, hb, lease int64
		var live int
		if err := rows.Scan(&in.Name, &zones, &in.PeerAddress, &in.Source, &in.Version, &view, &in.Channels, &in.Checks,
			&started, &hb, &lease, &live); err != nil {
			return nil, mapErr(err, "")
		}
		in.Zones, in.View = splitList(zones), splitList(view)
		if in.Zones == nil {
			in.Zones = []string{}
		}
		in.StartedAt, in.HeartbeatAt, in.LeaseUntil, in.Live = fromTS(started), fromTS(hb), fromTS(lease), live == 1
		out = append(out, in)
	}
	return out, mapErr(rows.Err(), "")
}

// FleetChannel is the channel name of the database's change notifications.
const FleetChannel = "lightsout_fleet"

// Listen calls fn with every change to accounts and machines made through
// any connection (PostgreSQL LISTEN/NOTIFY), until ctx ends or the
// connection fails (the error; call again to resume — changes made in
// between are missed, so reload after). ready, when not nil, is called
// once the LISTEN is in place.
func (db *DB) Listen(ctx context.Context, ready func(), fn func(Change)) error {
	if db.d.name != "postgres" {
		return ErrNoNotify
	}
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: listen: %w", err)
	}
	// The connection is dedicated to LISTEN: never handed back to the pool.
	defer conn.Raw(func(any) error { return driver.ErrBadConn })
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+FleetChannel); err != nil {
			return fmt.Errorf("store: listen: %w", err)
		}
		if ready != nil {
			ready()
		}
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("store: listen: %w", err)
			}
			if c, ok := parseChange(n); ok {
				fn(c)
			}
		}
	})
}

// AnnounceStates tells the other instances that instance stored channel
// state changes ('s:NAME' on FleetChannel, delivered once this call's
// statement committed — so after the states it follows): the leader
// groups incidents again only then (docs/scale-out.md). SQLite:
// ErrNoNotify.
func (db *DB) AnnounceStates(ctx context.Context, instance string) error {
	if db.d.name != "postgres" {
		return ErrNoNotify
	}
	_, err := (q{db.w, db.d}).exec(ctx, `SELECT pg_notify(?, ?)`, FleetChannel, "s:"+instance)
	return mapErr(err, "")
}

// NotifyMax is the most a payload of AnnounceDigests may carry
// (PostgreSQL refuses notifications of 8,000 bytes or more), less the
// instance's name.
const NotifyMax = 7900

// AnnounceDigests shares one batch of the fleet detectors' digests
// (events.MarshalDigests, at most NotifyMax bytes with the name) with the
// other instances ('d:NAME' newline JSON on FleetChannel). SQLite:
// ErrNoNotify.
func (db *DB) AnnounceDigests(ctx context.Context, instance string, batch []byte) error {
	if db.d.name != "postgres" {
		return ErrNoNotify
	}
	if len(batch)+len(instance) > NotifyMax {
		return &FieldError{Field: "digests", Reason: fmt.Sprintf("%d bytes: over the %d a notification carries", len(batch)+len(instance), NotifyMax)}
	}
	_, err := (q{db.w, db.d}).exec(ctx, `SELECT pg_notify(?, ?)`, FleetChannel, "d:"+instance+"\n"+string(batch))
	return mapErr(err, "")
}

func parseChange(n *pgconn.Notification) (Change, bool) {
	var c Change
	switch {
	case strings.HasPrefix(n.Payload, "a:"):
		if _, err := fmt.Sscanf(n.Payload, "a:%d:%d", &c.AccountID, &c.MachineID); err != nil {
			return c, false
		}
	case strings.HasPrefix(n.Payload, "d:"):
		name, body, ok := strings.Cut(n.Payload[2:], "\n")
		if !ok || name == "" {
			return c, false
		}
		c.Instance, c.Digests = name, []byte(body)
	case strings.HasPrefix(n.Payload, "s:") && len(n.Payload) > 2:
		c.Instance = n.Payload[2:]
	case strings.HasPrefix(n.Payload, "m:"):
		if _, err := fmt.Sscanf(n.Payload, "m:%d", &c.MachineID); err != nil {
			return c, false
		}
	default:
		return c, false
	}
	return c, true
}

// Zones lists the zones machines are in (DefaultZone for those naming
// none), sorted.
func (db *DB) Zones(ctx context.Context) ([]string, error) {
	rows, err := db.read().query(ctx, `SELECT DISTINCT zone FROM machines ORDER BY zone`)
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var z string
		if err := rows.Scan(&z); err != nil {
			return nil, mapErr(err, "")
		}
		if z == "" {
			z = DefaultZone
		}
		out = append(out, z)
	}
	slices.Sort(out)
	return slices.Compact(out), mapErr(rows.Err(), "")
}
