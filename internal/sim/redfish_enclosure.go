package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// An enclosure manager's Redfish service: the enclosure is a Chassis of
// ChassisType Enclosure whose Links.Contains lists a Chassis of ChassisType
// Blade per slot (Location.PartLocation: LocationType Slot,
// LocationOrdinalValue the slot), with the blade's PowerState and Status
// as the enclosure manager sees it, and its identify lamp as
// LocationIndicatorActive (PATCHable: the manager drives the lamp; it
// lights when the blade's BMC runs, whatever the state of its management
// link) — the shape of DMTF's multi-blade mockups, written here.

const (
	rfChassis   = rfRoot + "/Chassis"
	rfEnclosure = rfChassis + "/Enclosure"
)

func rfBlade(slot int) string { return rfChassis + "/Blade" + strconv.Itoa(slot) }

// isEM reports whether the service is an enclosure manager's.
func (s *rfService) isEM() bool { return s.b.kind == KindEnclosureManager && s.b.encl != nil }

func (s *rfService) chassis(w http.ResponseWriter, r *http.Request, path string) {
	if !s.isEM() {
		rfError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "The resource at the URI "+r.URL.Path+" was not found.")
		return
	}
	blades := s.b.encl.blades
	var contains []any
	for i := range blades {
		contains = append(contains, obj{"@odata.id": rfBlade(i + 1)})
	}
	switch {
	case path == rfChassis:
		rfJSON(w, http.StatusOK, collection(path, "#ChassisCollection.ChassisCollection", "Chassis Collection",
			append([]any{obj{"@odata.id": rfEnclosure}}, contains...)))
		return
	case path == rfEnclosure && r.Method != http.MethodPatch:
		rfJSON(w, http.StatusOK, obj{"@odata.id": rfEnclosure, "@odata.type": "#Chassis.v1_21_0.Chassis", "Id": "Enclosure",
			"Name": s.b.encl.name, "ChassisType": "Enclosure", "PowerState": "On",
			"Status": obj{"State": "Enabled", "Health": "OK"}, "Links": obj{"Contains": contains}})
		return
	}
	slot, err := strconv.Atoi(strings.TrimPrefix(path, rfChassis+"/Blade"))
	if !strings.HasPrefix(path, rfChassis+"/Blade") || err != nil || slot < 1 || slot > len(blades) {
		rfError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "The resource at the URI "+r.URL.Path+" was not found.")
		return
	}
	blade := blades[slot-1]
	if r.Method == http.MethodPatch {
		var body struct{ LocationIndicatorActive *bool }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.LocationIndicatorActive == nil {
			rfError(w, http.StatusBadRequest, "Base.1.8.PropertyMissing", "The request needs LocationIndicatorActive (true or false).")
			return
		}
		if blade.bmcAlive() {
			if *body.LocationIndicatorActive {
				blade.setIdentify(0xFF)
			} else {
				blade.setIdentify(0)
			}
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	c := obj{"@odata.id": path, "@odata.type": "#Chassis.v1_21_0.Chassis", "Id": "Blade" + strconv.Itoa(slot),
		"Name": fmt.Sprintf("Blade %d (%s)", slot, blade.name), "ChassisType": "Blade",
		"Location":                obj{"PartLocation": obj{"ServiceLabel": fmt.Sprintf("Slot %d", slot), "LocationType": "Slot", "LocationOrdinalValue": slot}},
		"LocationIndicatorActive": blade.bmcAlive() && blade.identifyState() != 0,
		"Links":                   obj{"ContainedBy": obj{"@odata.id": rfEnclosure}},
	}
	if blade.answersEM() {
		c["Status"] = obj{"State": "Enabled", "Health": "OK"}
		c["PowerState"] = map[bool]string{true: "On", false: "Off"}[blade.power.Load()]
	} else {
		// The manager gets no answer from the blade's BMC: its power is
		// unknown to it.
		c["Status"] = obj{"State": "UnavailableOffline", "Health": "Critical"}
	}
	rfJSON(w, http.StatusOK, c)
}
