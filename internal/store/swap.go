package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SwapAccountAddresses exchanges the addresses (address and port) of two
// accounts of the same protocol in one transaction: the diagnosis's fix
// for two BMCs that answer at each other's address. Swapping again undoes
// it. Nothing else of either account changes.
func (db *DB) SwapAccountAddresses(ctx context.Context, a, b int64) error {
	if a == b {
		return &FieldError{Field: "account", Reason: "an account cannot swap addresses with itself"}
	}
	type ep struct {
		protocol, address string
		port              int
	}
	read := func(x q, id int64) (ep, error) {
		var e ep
		err := x.row(ctx, "SELECT protocol, address, port FROM accounts WHERE id = ?", id).Scan(&e.protocol, &e.address, &e.port)
		if errors.Is(err, sql.ErrNoRows) {
			return e, notFoundID("account", id)
		}
		return e, err
	}
	return mapErr(db.tx(ctx, func(x q) error {
		ea, err := read(x, a)
		if err != nil {
			return err
		}
		eb, err := read(x, b)
		if err != nil {
			return err
		}
		if ea.protocol != eb.protocol {
			return &FieldError{Field: "account", Reason: fmt.Sprintf("accounts %d (%s) and %d (%s) use different protocols", a, ea.protocol, b, eb.protocol)}
		}
		t := ts(now())
		// The address is unique per protocol: park a's on a value no
		// account can have (a space is refused by validation), then swap.
		set := func(id int64, addr string, port int) error {
			_, err := x.exec(ctx, "UPDATE accounts SET address = ?, port = ?, updated_at = ? WHERE id = ?", addr, port, t, id)
			return err
		}
		if err := set(a, ea.address+" swapping", ea.port); err != nil {
			return err
		}
		if err := set(b, ea.address, ea.port); err != nil {
			return err
		}
		return set(a, eb.address, eb.port)
	}), "")
}
