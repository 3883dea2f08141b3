package firmware

import (
	"context"
	"github.com/bangfu/cabinet/firmware/fsm"

	"github.com/bangfu/cabinet/hal"
)

// lamp is what the indicator depends on besides the display's view.
type lamp struct {
	Forced bool // a door is open without an unlock (door_forced)
	Fault  bool // out of service for broken hardware: storage, lock or scale
}

// signalFor is what the LED and buzzer show (hal/indicator has the
// patterns):
//
//	Alarm  a door forced open, or the shopper's door open too long: a
//	       person must act here and now (the buzzer sounds)
//	Open   a door unlocked or open for a session
//	Fault  out of service with broken hardware: a technician is needed
//	Ready  the QR code shows: scan to shop
//	Off    anything else: out of service otherwise, the scales settling, a
//	       sale being judged, a receipt showing
func signalFor(v view, l lamp) hal.Signal {
	s := v.Session
	switch {
	case l.Forced:
		return hal.SignalAlarm
	case s != nil && s.State == fsm.DoorOpen && s.Alarmed:
		return hal.SignalAlarm
	case s != nil && (s.State == fsm.Authorised || s.State == fsm.Unlocked || s.State == fsm.DoorOpen):
		return hal.SignalOpen
	case s == nil && v.OutOfService != "" && l.Fault:
		return hal.SignalFault
	case s == nil && v.QR != "":
		return hal.SignalReady
	}
	return hal.SignalOff
}

// lamp gathers the indicator's inputs beyond v.
func (d *Device) lamp(v view) lamp {
	var l lamp
	for _, forced := range d.forced {
		l.Forced = l.Forced || forced
	}
	if v.OutOfService != "" {
		l.Fault = d.hardwareFault()
	}
	return l
}

// hardwareFault reports whether the cabinet is out of service because a
// part of it is broken, rather than waiting for the platform (planogram,
// clock, revoked goods).
func (d *Device) hardwareFault() bool {
	if d.store.fault != nil || d.ledger.WriteErr() != nil || d.lockFaulty() != "" {
		return true
	}
	for _, sh := range d.hw.Shelves {
		if d.readErr[sh.Number] != nil {
			return true
		}
	}
	return false
}

// refreshIndicator shows v's signal on the indicator, when the cabinet has
// one, and only when it changes; a failed Set is tried again next tick.
func (d *Device) refreshIndicator(ctx context.Context, v view) {
	ind := d.hw.Indicator
	if ind == nil {
		return
	}
	sig := signalFor(v, d.lamp(v))
	if d.disp.signalOK && sig == d.disp.signal {
		return
	}
	if err := ind.Set(ctx, sig); err != nil {
		d.disp.signalOK = false
		d.badLog.Warn("indicator", "indicator", "signal", sig.String(), "err", err)
		return
	}
	d.disp.signal, d.disp.signalOK = sig, true
}
