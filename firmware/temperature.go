package firmware

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// thermoEvery is how often the thermometer is read. A DS18B20 takes up to
// 750 ms per conversion, so it is read on a goroutine of its own, never on
// the device loop.
const thermoEvery = 10 * time.Second

// thermo is the newest thermometer reading, shared between the reading
// goroutine and the device loop.
type thermo struct {
	mu  sync.Mutex
	c   float64
	at  time.Time
	err error
}

func (t *thermo) set(c float64, err error, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.c, t.err, t.at = c, err, at
}

// get returns the newest reading; ok is false before the first good one
// or when the last read failed.
func (t *thermo) get() (c float64, ok bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.c, t.err == nil && !t.at.IsZero(), t.err
}

// runThermometer reads the thermometer every thermoEvery until ctx ends.
func (d *Device) runThermometer(ctx context.Context) {
	if d.hw.Thermometer == nil {
		return
	}
	for {
		c, err := d.hw.Thermometer.Celsius(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.badLog.Warn("thermometer", "thermometer", "err", err)
		}
		d.temp.set(c, err, d.now())
		select {
		case <-ctx.Done():
			return
		case <-d.clk.After(thermoEvery):
		}
	}
}

// coldChain is the temperature alarm's state (Run goroutine only).
type coldChain struct {
	outSince time.Time // the air out of the cold-chain range since
	alarmed  bool      // the temperature alarm is raised
}

// checkTemperature raises a `temperature` alarm when a cold-chain cabinet's
// air has stayed outside its range for temp_alarm_s, and clears it when
// the air is back in range. A thermometer that cannot be read counts as
// out of range on a cold-chain cabinet: nobody can vouch for the food.
func (d *Device) checkTemperature(now time.Time) {
	if !d.cfg.ColdChain || d.hw.Thermometer == nil {
		return
	}
	c, ok, err := d.temp.get()
	if !ok && err == nil {
		return // no reading yet
	}
	inRange := ok && c >= d.cfg.TempMinC && c <= d.cfg.TempMaxC
	switch {
	case inRange:
		d.cold.outSince = time.Time{}
		if d.cold.alarmed {
			d.cold.alarmed = false
			d.alarmCleared(msg.AlarmTemperature, map[string]any{"temp_c": round1(c)})
		}
	case d.cold.outSince.IsZero():
		d.cold.outSince = now
	case !d.cold.alarmed && now.Sub(d.cold.outSince) >= d.cfg.TempAlarm():
		d.cold.alarmed = true
		detail := map[string]any{"min_c": d.cfg.TempMinC, "max_c": d.cfg.TempMaxC,
			"out_s": int(now.Sub(d.cold.outSince).Seconds())}
		if ok {
			detail["temp_c"] = round1(c)
		} else {
			detail["err"] = err.Error()
		}
		d.alarm(msg.AlarmTemperature, msg.SevCritical, detail)
	}
}

// heartbeatTemp is the reading for the heartbeat, or nil.
func (d *Device) heartbeatTemp() *float64 {
	c, ok, _ := d.temp.get()
	if !ok || math.IsNaN(c) {
		return nil
	}
	c = round1(c)
	return &c
}
