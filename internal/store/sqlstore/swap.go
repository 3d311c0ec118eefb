package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SwapAccountAddresses exchanges the addresses (address and port) of two
// accounts of the same protocol in one transaction: the diagnosis's fix
// for two BMCs that answer at each other's address. Swapping again undoes
// it. Nothing else of either account changes; each password is sealed
// again for its account's new address.
//
// atA and atB are the endpoints the diagnosis verified (the BMC at atA
// answered with b's machine's GUID and the one at atB with a's): the swap
// is refused (ErrConflict, nothing changed) unless a is still at atA and b
// at atB, so a password only ever moves between those two addresses.
func (db *DB) SwapAccountAddresses(ctx context.Context, a, b int64, atA, atB Endpoint) error {
	if a == b {
		return &FieldError{Field: "account", Reason: "an account cannot swap addresses with itself"}
	}
	type row struct {
		ep   Endpoint
		pw   []byte
		name string
	}
	read := func(x q, id int64) (row, error) {
		var r row
		err := x.row(ctx, "SELECT a.protocol, a.address, a.port, a.password, m.name"+accountFrom+" WHERE a.id = ?", id).
			Scan(&r.ep.Protocol, &r.ep.Address, &r.ep.Port, &r.pw, &r.name)
		if errors.Is(err, sql.ErrNoRows) {
			return r, notFoundID("account", id)
		}
		return r, err
	}
	return mapErr(db.tx(ctx, func(x q) error {
		ra, err := read(x, a)
		if err != nil {
			return err
		}
		rb, err := read(x, b)
		if err != nil {
			return err
		}
		ea, eb := ra.ep, rb.ep
		if ea.Protocol != eb.Protocol {
			return &FieldError{Field: "account", Reason: fmt.Sprintf("accounts %d (%s) and %d (%s) use different protocols", a, ea.Protocol, b, eb.Protocol)}
		}
		if ea != atA || eb != atB {
			return &FieldError{Field: "account", Reason: fmt.Sprintf("accounts %d and %d are at %s and %s, not at the verified %s and %s: not swapped",
				a, b, ea, eb, atA, atB), Err: ErrConflict}
		}
		// Each password follows its account to the other verified address.
		reseal := func(r row, to Endpoint) ([]byte, error) {
			pt, err := db.unseal("machine "+r.name, r.pw, accountBinding(r.ep.Protocol, r.ep.Address, r.ep.Port))
			if err != nil {
				return nil, err
			}
			return db.seal("machine "+r.name, pt, accountBinding(to.Protocol, to.Address, to.Port))
		}
		pwA, err := reseal(ra, eb)
		if err != nil {
			return err
		}
		pwB, err := reseal(rb, ea)
		if err != nil {
			return err
		}
		t := ts(now())
		// The address is unique per protocol: park a's on a value no
		// account can have (a space is refused by validation), then swap.
		set := func(id int64, addr string, port int, pw []byte) error {
			_, err := x.exec(ctx, "UPDATE accounts SET address = ?, port = ?, password = ?, updated_at = ? WHERE id = ?", addr, port, pw, t, id)
			return err
		}
		if err := set(a, ea.Address+" swapping", ea.Port, ra.pw); err != nil {
			return err
		}
		if err := set(b, ea.Address, ea.Port, pwB); err != nil {
			return err
		}
		return set(a, eb.Address, eb.Port, pwA)
	}), "")
}
