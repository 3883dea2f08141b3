package cabsim

import "time"

// FleetView is GET /api/fleet: the whole simulation at a glance, for
// measuring a fleet (the README's Fleet section) without walking every
// cabinet's own view.
type FleetView struct {
	At        time.Time `json:"at"`
	Cabinets  int       `json:"cabinets"`
	Powered   int       `json:"powered"`
	Connected int       `json:"connected"` // firmware linked to the broker
	Hushed    int       `json:"hushed"`    // idle, scales not sampling (hal.Quiet)
	// Samples is the raw load-cell samples all cabinets have drawn since
	// start: its rate is the simulation's own sampling cost.
	Samples uint64 `json:"samples"`
}

// Fleet counts the cabinets' states now.
func (s *Sim) Fleet() FleetView {
	v := FleetView{At: time.Now().UTC(), Cabinets: len(s.cabinets)}
	for _, c := range s.cabinets {
		if c.Powered() {
			v.Powered++
		}
		if st, ok := c.Status(); ok && st.Connected {
			v.Connected++
		}
		if c.HW.Hushed() {
			v.Hushed++
		}
		v.Samples += c.HW.Samples()
	}
	return v
}
