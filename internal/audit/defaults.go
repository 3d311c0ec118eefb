package audit

// Credential is a documented factory default login.
type Credential struct {
	Vendor  string `json:"vendor"`
	Product string `json:"product"`
	// ManufacturerIDs are the IANA enterprise numbers Get Device ID
	// reports for this vendor's BMCs (empty: generic, tried on any BMC).
	ManufacturerIDs []uint32 `json:"manufacturer_ids,omitempty"`
	User            string   `json:"user"`
	Password        string   `json:"-"`
	// Source is where the default is documented (docs/security-audit.md
	// lists them with notes).
	Source string `json:"source"`
}

// Defaults is the shipped list of vendor default credentials, tried only
// on BMCs whose Get Device ID names that manufacturer. Vendors that ship a
// random password per box (HPE iLO since iLO 2, Supermicro since 2020,
// Gigabyte since 2020, recent iDRAC 9 when ordered so) have nothing
// guessable beyond the older default listed.
var Defaults = []Credential{
	{Vendor: "Dell", Product: "iDRAC", ManufacturerIDs: []uint32{674}, User: "root", Password: "calvin",
		Source: "Dell iDRAC 7/8 User's Guide 2.50.50.50, 'Logging in to iDRAC': the default user name is root and the default password is calvin"},
	{Vendor: "Supermicro", Product: "BMC (before 2020)", ManufacturerIDs: []uint32{10876}, User: "ADMIN", Password: "ADMIN",
		Source: "Supermicro IPMI: ADMIN/ADMIN until late 2019 and after a factory reset of older boards (ipmicfg -fd); later boards carry a unique password on a label"},
	{Vendor: "Lenovo/IBM", Product: "IMM, IMM2, XClarity Controller", ManufacturerIDs: []uint32{2, 20301, 19046}, User: "USERID", Password: "PASSW0RD",
		Source: "IBM Integrated Management Module USERID/PASSW0RD (zero, not O), kept by Lenovo IMM2/XCC (public IPMI default-credential lists)"},
	{Vendor: "Fujitsu", Product: "iRMC", ManufacturerIDs: []uint32{10368}, User: "admin", Password: "admin",
		Source: "Fujitsu iRMC admin/admin (public IPMI default-credential lists); some product lines set an initial password given by service"},
	{Vendor: "Cisco", Product: "CIMC", ManufacturerIDs: []uint32{5771}, User: "admin", Password: "password",
		Source: "Cisco CIMC admin/password on older firmware (Cisco community reports); newer firmware forces a change at first login"},
	{Vendor: "OpenBMC", Product: "OpenBMC (Intel, IBM Power, NVIDIA BlueField)", ManufacturerIDs: []uint32{49622, 343}, User: "root", Password: "0penBmc",
		Source: "IBM Power OpenBMC documentation, 'Setting the password': the default user ID is root and the default password is 0penBmc (zero)"},
	{Vendor: "Huawei", Product: "iBMC", ManufacturerIDs: []uint32{2011}, User: "Administrator", Password: "Admin@9000",
		Source: "Huawei iBMC user guides: the default user is Administrator; Admin@9000 is its widely published initial password (not confirmed in a Huawei document)"},
	{Vendor: "Inspur", Product: "BMC", ManufacturerIDs: []uint32{37945}, User: "admin", Password: "admin",
		Source: "Inspur server user manuals (OB5161M5, ON5263M5), BMC user management: user 1 admin, password admin"},
	{Vendor: "Gigabyte", Product: "MegaRAC SP-X (before March 2020)", ManufacturerIDs: []uint32{15370}, User: "admin", Password: "password",
		Source: "Gigabyte security announcement 'BMC Unique Pre-Programmed Password' (2020): products shipped before March 2020 use admin/password"},
	{Vendor: "Oracle/Sun", Product: "ILOM", ManufacturerIDs: []uint32{42}, User: "root", Password: "changeme",
		Source: "Oracle ILOM root/changeme (public IPMI default-credential lists)"},
	{Vendor: "ASUS", Product: "ASMB iKVM", ManufacturerIDs: []uint32{2623}, User: "admin", Password: "admin",
		Source: "ASUS iKVM BMC admin/admin (public IPMI default-credential lists)"},
}

// Generic are tried on any BMC after its vendor's own defaults (within
// the per-audit limit): the defaults of the common OEM firmware stacks
// (AMI MegaRAC, Supermicro-based boards, OpenBMC).
var Generic = []Credential{
	{Vendor: "generic", Product: "AMI MegaRAC-based BMCs", User: "admin", Password: "admin",
		Source: "AMI MegaRAC SP-X based BMCs (Inspur, ASUS, Fujitsu, many OEMs) ship admin/admin"},
	{Vendor: "generic", Product: "Supermicro-based BMCs", User: "ADMIN", Password: "ADMIN",
		Source: "Supermicro boards (and systems built on them) before 2020"},
	{Vendor: "generic", Product: "OpenBMC", User: "root", Password: "0penBmc",
		Source: "OpenBMC's default root/0penBmc"},
}

// DefaultMaxGuesses is how many default credentials one audit tries at
// most (the own account's defaults are compared locally, not tried).
const DefaultMaxGuesses = 3

// Candidates are the default credentials to try on a BMC of that
// manufacturer: its vendor's, then the generic ones, without duplicates,
// at most max.
func Candidates(manufacturerID uint32, max int) []Credential {
	var out []Credential
	seen := map[[2]string]bool{}
	add := func(c Credential) {
		k := [2]string{c.User, c.Password}
		if len(out) >= max || seen[k] {
			return
		}
		seen[k] = true
		out = append(out, c)
	}
	for _, c := range Defaults {
		for _, id := range c.ManufacturerIDs {
			if id == manufacturerID {
				add(c)
			}
		}
	}
	for _, c := range Generic {
		add(c)
	}
	return out
}

// ownDefault returns the documented default that user/password is, if it
// is one (any vendor's: an account set up with another vendor's default is
// just as guessable).
func ownDefault(user string, password []byte) (Credential, bool) {
	for _, list := range [][]Credential{Defaults, Generic} {
		for _, c := range list {
			if c.User == user && c.Password == string(password) {
				return c, true
			}
		}
	}
	return Credential{}, false
}
