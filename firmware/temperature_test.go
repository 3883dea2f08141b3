package firmware

import (
	"errors"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/telemetry/msg"
)

func TestColdChainTemperatureAlarm(t *testing.T) {
	r := newRig(t, func(c *config.Config) { c.ColdChain, c.TempAlarmS = true, 1 })
	// read takes one thermometer reading, as runThermometer would.
	read := func() {
		c, err := r.d.hw.Thermometer.Celsius(r.ctx)
		r.d.temp.set(c, err, r.d.now())
	}
	r.hw.SetTemp(4)
	read()
	stepFor(t, r.d, 100*time.Millisecond)
	if n := len(r.alarms(msg.AlarmTemperature)); n != 0 {
		t.Fatalf("%d temperature alarms at 4 °C", n)
	}

	// A door opening warms it for less than temp_alarm_s: no alarm.
	r.hw.SetTemp(12)
	read()
	stepFor(t, r.d, 300*time.Millisecond)
	r.hw.SetTemp(5)
	read()
	stepFor(t, r.d, 1200*time.Millisecond)
	if n := len(r.alarms(msg.AlarmTemperature)); n != 0 {
		t.Fatalf("%d temperature alarms after a short warm spell", n)
	}

	// Warm for longer: one critical alarm, then cleared when cold again.
	r.hw.SetTemp(12)
	read()
	stepUntil(t, r.d, func() bool { return len(r.alarms(msg.AlarmTemperature)) == 1 }, 5*time.Second)
	a := r.alarms(msg.AlarmTemperature)[0]
	if a.Severity != msg.SevCritical || a.Cleared || a.Detail["temp_c"] != 12.0 {
		t.Fatalf("alarm %+v", a)
	}
	stepFor(t, r.d, 200*time.Millisecond)
	if n := len(r.alarms(msg.AlarmTemperature)); n != 1 {
		t.Fatalf("%d temperature alarms, want it raised once", n)
	}
	r.hw.SetTemp(4)
	read()
	stepUntil(t, r.d, func() bool { return len(r.alarms(msg.AlarmTemperature)) == 2 }, 5*time.Second)
	if !r.alarms(msg.AlarmTemperature)[1].Cleared {
		t.Fatal("second temperature alarm is not the clearing")
	}

	// A thermometer that cannot be read cannot vouch for the food.
	r.d.temp.set(0, errors.Join(hal.ErrFault, errors.New("ds18b20: crc")), r.d.now())
	stepUntil(t, r.d, func() bool { return len(r.alarms(msg.AlarmTemperature)) == 3 }, 5*time.Second)
	if a := r.alarms(msg.AlarmTemperature)[2]; a.Cleared || a.Detail["err"] == nil {
		t.Fatalf("alarm for a dead thermometer %+v", a)
	}
}
