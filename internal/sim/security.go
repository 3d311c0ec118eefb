package sim

import (
	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/types"
)

// securityFaults are the faults that change what a security audit finds.
type securityFaults struct {
	cipher0, anonymous, weakAuth, defaultPassword, weakSuites bool
}

// security is the effective security settings: insecure is cipher0,
// anonymous and weak_auth together, plus the weak suites 1 and 2.
func (f *Faults) security() securityFaults {
	return securityFaults{
		cipher0:         f.Cipher0 || f.Insecure,
		anonymous:       f.Anonymous || f.Insecure,
		weakAuth:        f.WeakAuth || f.Insecure,
		defaultPassword: f.DefaultPassword,
		weakSuites:      f.Insecure,
	}
}

// DefaultCredential is the factory default user name and password the
// default_password fault gives a BMC of that manufacturer (IANA enterprise
// number): Dell root/calvin, Supermicro ADMIN/ADMIN, Lenovo and IBM
// USERID/PASSW0RD, Intel and OpenBMC root/0penBmc; ADMIN/ADMIN for any
// other — HPE iLO ships a random password per box, and the admin/admin of
// Fujitsu, Inspur or AMI-based BMCs would be the simulator's own admin
// account. The security audit's list (internal/audit) knows every one.
func DefaultCredential(manufacturerID uint32) (user, password string) {
	switch manufacturerID {
	case 674: // Dell iDRAC
		return "root", "calvin"
	case 10876: // Supermicro
		return "ADMIN", "ADMIN"
	case 2, 20301, 19046: // IBM IMM, Lenovo IMM2/XCC
		return "USERID", "PASSW0RD"
	case 343, 49622: // Intel, OpenBMC
		return "root", "0penBmc"
	}
	return "ADMIN", "ADMIN"
}

// applySecurity configures the anonymous user, cipher suites, IPMI 1.5
// authentication types and the vendor default account: a sound BMC by
// default, audit findings under the cipher0, anonymous, weak_auth,
// default_password and insecure faults. Safe on a running BMC.
func (b *BMC) applySecurity(m *bmc.BMC, f *Faults) {
	s := f.security()
	_ = m.Users.Update(1, func(u *bmc.User) error {
		u.Enabled = s.anonymous
		u.SetPassword(nil)
		if u.ChannelAccess == nil {
			u.ChannelAccess = map[uint8]bmc.UserChannelAccess{}
		}
		if s.anonymous {
			u.ChannelAccess[lanChannel] = bmc.UserChannelAccess{MaxPrivilege: bmc.PrivilegeLevelAdministrator, Enabled: true}
		} else {
			delete(u.ChannelAccess, lanChannel)
		}
		return nil
	})
	var suites []types.CipherSuiteID // nil: go-ipmi's default, 3 and 17
	switch {
	case s.weakSuites:
		suites = []types.CipherSuiteID{types.CipherSuiteID0, types.CipherSuiteID1, types.CipherSuiteID2, types.CipherSuiteID3, types.CipherSuiteID17}
	case s.cipher0:
		suites = []types.CipherSuiteID{types.CipherSuiteID0, types.CipherSuiteID3, types.CipherSuiteID17}
	}
	m.SetCipherSuites(suites)
	if s.weakAuth {
		bmc.WithV15AuthTypes([]bmc.V15AuthType{bmc.V15AuthTypeNone, bmc.V15AuthTypePassword, bmc.V15AuthTypeMD5})(m)
	} else {
		bmc.WithV15AuthTypes(nil)(m)
	}
	if s.defaultPassword {
		user, pw := DefaultCredential(b.vendor.ManufacturerID)
		_ = m.Users.Upsert(defaultID, func(u *bmc.User) error {
			fillUser(u, user, []byte(pw), bmc.PrivilegeLevelAdministrator)
			return nil
		})
	} else {
		_ = m.Users.Delete(defaultID)
	}
}
