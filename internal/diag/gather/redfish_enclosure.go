package gather

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/redfish"
)

// A Redfish enclosure manager (enclosure kind "redfish"): the enclosure is
// a Chassis whose Links.Contains lists its blades' Chassis; a blade's slot
// is its Location.PartLocation.LocationOrdinalValue (LocationType Slot),
// else its place in Links.Contains. The blade's Status and PowerState say
// whether the manager hears its BMC; LocationIndicatorActive drives and
// reads its identify lamp. The manager's certificate is pinned on first
// contact (EMPins, by enclosure name): credentials go to that certificate
// only.

// emPinName is the name the enclosure manager's certificate is pinned
// under.
func emPinName(enclosure string) string { return "enclosure/" + enclosure }

// emRedfishReach: does the enclosure manager's HTTPS service answer (the
// service root, no credentials)? Any HTTP answer counts.
func (x *Executor) emRedfishReach(ctx context.Context, b *Blade) *Reach {
	return x.httpsReach(ctx, b.EMAddress)
}

// httpsReach: does the Redfish service at hp answer its service root
// (no credentials)? Any HTTP answer counts.
func (x *Executor) httpsReach(ctx context.Context, hp string) *Reach {
	r := &Reach{Address: hp}
	if x.RedfishTransport == nil {
		r.Err = "no Redfish transport here"
		return r
	}
	c := &redfish.Client{HTTP: &http.Client{Transport: x.RedfishTransport}, Base: "https://" + hp, Timeout: x.timeout()}
	start := time.Now()
	_, _, err := c.GetRoot(ctx)
	var he *redfish.HTTPError
	if err == nil || errors.As(err, &he) {
		r.Answered, r.RTTMS = true, float64(time.Since(start).Microseconds())/1000
		return r
	}
	r.Err = errText(err)
	return r
}

// emRedfish logs in to the enclosure manager's Redfish service, after
// checking its certificate against the pinned one (pinning it on first
// contact). logout ends the session.
func (x *Executor) emRedfish(ctx context.Context, b *Blade) (c *redfish.Client, logout func(), err error) {
	logout = func() {}
	if x.RedfishTransport == nil || x.EMPins == nil {
		return nil, logout, errors.New("the enclosure manager's certificate cannot be pinned here: no credentials sent")
	}
	e, err := x.Store.Enclosure(ctx, b.Enclosure)
	if err != nil {
		return nil, logout, fmt.Errorf("enclosure %s: %w", b.Enclosure, err)
	}
	if e.User == "" || len(e.Password) == 0 {
		return nil, logout, fmt.Errorf("the inventory holds no user and password for enclosure %s's manager", b.Enclosure)
	}
	c = &redfish.Client{HTTP: &http.Client{Transport: x.RedfishTransport}, Base: "https://" + b.EMAddress,
		User: e.User, Password: e.Password, Timeout: x.timeout()}
	root, resp, err := c.GetRoot(ctx)
	var he *redfish.HTTPError
	if err != nil && !errors.As(err, &he) {
		return nil, logout, fmt.Errorf("the enclosure manager's service root: %s", errText(err))
	}
	got := ""
	if resp != nil && resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		sum := sha256.Sum256(resp.TLS.PeerCertificates[0].Raw)
		got = hex.EncodeToString(sum[:])
	}
	pinned, err := x.EMPins.CertPin(ctx, emPinName(b.Enclosure))
	switch {
	case err != nil:
		return nil, logout, fmt.Errorf("the enclosure manager's certificate pin: %w", err)
	case got == "":
		return nil, logout, errors.New("the enclosure manager presented no certificate: no credentials sent")
	case pinned == "":
		if err := x.EMPins.PinCert(ctx, emPinName(b.Enclosure), got); err != nil {
			return nil, logout, fmt.Errorf("pinning the enclosure manager's certificate: %w", err)
		}
	case !strings.EqualFold(pinned, got):
		return nil, logout, fmt.Errorf("the enclosure manager presents another certificate (SHA-256 %s) than the one pinned (%s): no credentials sent; verify it on its console", got, pinned)
	}
	if root == nil {
		root = &redfish.Root{}
	}
	if _, err := c.Authenticate(ctx, root, redfish.AuthAuto); err != nil {
		return nil, logout, fmt.Errorf("logging in to the enclosure manager: %s", errText(err))
	}
	return c, func() { _ = c.Logout(context.WithoutCancel(ctx)) }, nil
}

// rfChassis is what the diagnosis reads of a Chassis.
type rfChassis struct {
	ID          string `json:"@odata.id"`
	Name        string
	ChassisType string
	PowerState  string
	Status      struct{ State, Health string }
	Location    struct {
		PartLocation struct {
			LocationType         string
			LocationOrdinalValue *int
		}
	}
	LocationIndicatorActive *bool
	Links                   struct{ Contains []redfish.Link }
}

// bmcHeard: the manager hears the blade's BMC (it reports a power state,
// and the chassis is not offline, disabled or absent).
func (c rfChassis) bmcHeard() bool {
	return c.PowerState != "" && !slices.Contains([]string{"Absent", "Disabled", "UnavailableOffline"}, c.Status.State)
}

func (c rfChassis) describe() string {
	s := fmt.Sprintf("Chassis %s (Status %s/%s, PowerState %s", c.ID, nonEmpty(c.Status.State, "-"), nonEmpty(c.Status.Health, "-"), nonEmpty(c.PowerState, "not reported"))
	return s + ")"
}

// bladeChassis finds the blade's Chassis behind the enclosure's
// Links.Contains: the one at the slot's LocationOrdinalValue, else the
// slot-th one listed.
func bladeChassis(ctx context.Context, c *redfish.Client, slot int) (blade *rfChassis, enclosure string, err error) {
	var coll struct{ Members []redfish.Link }
	if err := c.Get(ctx, "/redfish/v1/Chassis", "ChassisCollection", &coll); err != nil {
		return nil, "", err
	}
	var contains []redfish.Link
	for i, m := range coll.Members {
		if i == 32 {
			break
		}
		var ch rfChassis
		if err := c.Get(ctx, m.ID, "Chassis", &ch); err != nil {
			return nil, "", err
		}
		if len(ch.Links.Contains) > 0 && (ch.ChassisType == "Enclosure" || contains == nil) {
			contains, enclosure = ch.Links.Contains, ch.ID
		}
	}
	if contains == nil {
		return nil, "", errors.New("no Chassis of the enclosure manager lists the blades it contains (Links.Contains)")
	}
	var byOrder *rfChassis
	for i, l := range contains {
		if i == 64 {
			break
		}
		var ch rfChassis
		if err := c.Get(ctx, l.ID, "Chassis", &ch); err != nil {
			return nil, enclosure, err
		}
		if ch.ID == "" {
			ch.ID = l.ID
		}
		if o := ch.Location.PartLocation.LocationOrdinalValue; o != nil && *o == slot {
			return &ch, enclosure, nil
		}
		if i == slot-1 && ch.Location.PartLocation.LocationOrdinalValue == nil {
			byOrder = &ch
		}
	}
	return byOrder, enclosure, nil
}

// redfishBladeView is the Redfish enclosure manager's view of the slot.
func (x *Executor) redfishBladeView(ctx context.Context, b *Blade) *BladeView {
	v := &BladeView{}
	v.Status.Slot = b.Slot
	c, logout, err := x.emRedfish(ctx, b)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	defer logout()
	v.LoggedIn = true
	ch, enc, err := bladeChassis(ctx, c, b.Slot)
	var he *redfish.HTTPError
	if errors.As(err, &he) && (he.Status == http.StatusForbidden || he.Status == http.StatusMethodNotAllowed || he.Status == http.StatusNotImplemented) {
		v.Refused = fmt.Sprintf("GET %s with HTTP %d", he.URL, he.Status)
		return v
	}
	if err != nil {
		v.Err = "the enclosure manager did not report the slot: " + errText(err)
		return v
	}
	if ch == nil || ch.Status.State == "Absent" {
		v.Device = fmt.Sprintf("no Chassis in %s's Links.Contains is at slot %d", enc, b.Slot)
		return v
	}
	v.Chassis = ch.ID
	v.Status.Present = true
	v.Status.BMCAnswers = ch.bmcHeard()
	v.Status.PowerOn = ch.PowerState == "On"
	v.PowerKnown = ch.PowerState != ""
	v.Device = ch.describe()
	return v
}

// redfishIdentify lights the blade's lamp through the enclosure manager
// (PATCH LocationIndicatorActive true), reads it back, and turns it off
// again unless it was on before.
func (x *Executor) redfishIdentify(ctx context.Context, b *Blade, chassis string) *Identify {
	id := &Identify{}
	c, logout, err := x.emRedfish(ctx, b)
	if err != nil {
		id.Err = err.Error()
		return id
	}
	defer logout()
	if chassis == "" {
		ch, _, err := bladeChassis(ctx, c, b.Slot)
		if err != nil || ch == nil {
			id.Err = "finding the blade's Chassis: " + nonEmpty(errText(err), "none at the slot")
			return id
		}
		chassis = ch.ID
	}
	read := func() (*bool, error) {
		var ch rfChassis
		if err := c.Get(ctx, chassis, "Chassis", &ch); err != nil {
			return nil, err
		}
		return ch.LocationIndicatorActive, nil
	}
	before, err := read()
	if err != nil {
		id.Err = "reading the lamp: " + errText(err)
		return id
	}
	if before == nil {
		id.Err = chassis + " has no LocationIndicatorActive: the enclosure manager does not drive the blade's lamp"
		return id
	}
	if _, err := c.Do(ctx, http.MethodPatch, chassis, map[string]bool{"LocationIndicatorActive": true}); err != nil {
		id.Err = "turning the lamp on: " + errText(err)
		return id
	}
	wait := x.IdentifyWait
	if wait <= 0 {
		wait = 300 * time.Millisecond
	}
	select {
	case <-time.After(wait):
	case <-ctx.Done():
	}
	lit, err := read()
	if !*before {
		_, _ = c.Do(ctx, http.MethodPatch, chassis, map[string]bool{"LocationIndicatorActive": false})
	}
	if err != nil || lit == nil {
		id.Err = "reading the lamp back: " + nonEmpty(errText(err), "not reported")
		return id
	}
	id.Lit = *lit
	return id
}
