package hx711

import (
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/bangfu/cabinet/internal/clocktest"
)

// edge is one change of the clock line.
type edge struct {
	Level gpio.Level
	At    time.Time
	// Read and Pulse place a rising edge in chip 0's protocol: the read it
	// belongs to (1-based) and the pulse number within it. Read 0 means a
	// power-down hold, or a pulse while chip 0 had no data ready (a fault).
	Read, Pulse int
}

// fakeLine is the PD_SCK line shared by the fake chips: the driver's clock
// gpio.PinOut. It passes every edge to the chips and records the waveform.
type fakeLine struct {
	*gpiotest.Pin // the methods the driver does not use

	clock Clock
	fc    *clocktest.Clock // for delayHigh; nil with the system clock
	// delayHigh is time that passes inside Out(High), the clock left high:
	// a goroutine preempted in the middle of a pulse. read and pulse are as
	// in edge.
	delayHigh func(read, pulse int) time.Duration
	// failOut makes the n-th Out call (1-based) fail.
	failOut func(n int) error
	record  bool // keep the waveform and the chips' reads (off in benchmarks)

	mu     sync.Mutex // guards the line and every chip on it
	level  gpio.Level
	highAt time.Time
	outs   int
	wave   []edge
	chips  []*fakeChip
}

// Out implements gpio.PinOut.
func (l *fakeLine) Out(v gpio.Level) error {
	l.mu.Lock()
	l.outs++
	if l.failOut != nil {
		if err := l.failOut(l.outs); err != nil {
			l.mu.Unlock()
			return err
		}
	}
	now := l.clock.Now()
	if v == l.level {
		l.mu.Unlock()
		return nil
	}
	if v == gpio.Low {
		high := now.Sub(l.highAt)
		l.level = gpio.Low
		for _, c := range l.chips {
			c.fall(now, high)
		}
		if l.record {
			if n := len(l.wave); high >= PowerDownTime && n > 0 && l.wave[n-1].Level == gpio.High {
				l.wave[n-1].Read, l.wave[n-1].Pulse = 0, 0 // a hold, not a pulse
			}
			l.wave = append(l.wave, edge{Level: gpio.Low, At: now})
		}
		l.mu.Unlock()
		return nil
	}
	for _, c := range l.chips {
		c.rise(now)
	}
	l.level, l.highAt = gpio.High, now
	var read, pulse int
	if c0 := l.chips[0]; c0.state == reading {
		read, pulse = c0.started, c0.pulses
	}
	if l.record {
		l.wave = append(l.wave, edge{Level: gpio.High, At: now, Read: read, Pulse: pulse})
	}
	var d time.Duration
	if l.delayHigh != nil {
		d = l.delayHigh(read, pulse)
	}
	l.mu.Unlock()
	if d > 0 {
		l.fc.Advance(d)
	}
	return nil
}

// Read implements gpio.PinIn for symmetry; the driver never reads the clock.
func (l *fakeLine) Read() gpio.Level {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.level
}

func (l *fakeLine) edges() []edge {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]edge(nil), l.wave...)
}

// word is one scripted conversion.
type word struct {
	v     uint32        // 24-bit two's complement
	after time.Duration // ready this long after the previous read or a power-up
	polls int           // and not before DOUT was looked at this many times
}

// readRec is one read as the chip saw it.
type readRec struct {
	Word    uint32
	Gain    Gain // selection the conversion was made with
	Pulses  int
	ReadyAt time.Time
	First   time.Time // first rising edge
	Aborted bool      // powered down in the middle
}

type chipState int

const (
	idle    chipState = iota // converting: DOUT high
	ready                    // DOUT low, no pulse yet
	reading                  // pulses counted
)

// fakeChip is one HX711 with its DOUT pin: the driver's data gpio.PinIn.
// DOUT goes low when the next scripted word is ready; each rising clock edge
// shifts out a bit; the pulse count sets the next conversion's gain; a
// clock-high phase of PowerDownTime or more power-cycles it.
type fakeChip struct {
	*gpiotest.Pin // the methods the driver does not use
	line          *fakeLine

	// Guarded by line.mu.
	absent   bool // no chip: DOUT floats to its pull
	pull     gpio.Pull
	queue    []word
	gen      func(n int) uint32 // endless words after the queue, each genAfter apart
	genAfter time.Duration
	genN     int

	state       chipState
	cur         readRec
	pulses      int
	base        time.Time // end of the last read or power-up
	polls       int       // looks at DOUT since base
	gain        Gain      // selection for the conversion under way
	started     int
	reads       []readRec
	early       int // rising edges while not ready that were not a power-down
	extra       int // pulses past the 27th
	powerCycles int
	risenIdle   bool
}

// newFakeBus returns a clock line with n chips on it. fc may be nil when
// clock is the system clock.
func newFakeBus(clock Clock, fc *clocktest.Clock, n int) (*fakeLine, []*fakeChip) {
	l := &fakeLine{Pin: &gpiotest.Pin{N: "SCK", Num: 5}, clock: clock, fc: fc, record: true}
	now := clock.Now()
	for i := range n {
		c := &fakeChip{
			Pin:  &gpiotest.Pin{N: "DT" + string(rune('A'+i)), Num: 6 + i},
			line: l,
			gain: A128,
			base: now,
		}
		l.chips = append(l.chips, c)
	}
	return l, l.chips
}

// In implements gpio.PinIn.
func (c *fakeChip) In(pull gpio.Pull, e gpio.Edge) error {
	c.line.mu.Lock()
	c.pull = pull
	c.line.mu.Unlock()
	return c.Pin.In(pull, e)
}

// Read implements gpio.PinIn: the DOUT level. A look while converting counts
// as a poll.
func (c *fakeChip) Read() gpio.Level {
	l := c.line
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	c.settle(now)
	if c.state == idle {
		c.polls++
		c.tryReady(now)
	}
	return c.level(now)
}

func (c *fakeChip) level(now time.Time) gpio.Level {
	switch {
	case c.absent:
		return c.pull == gpio.PullUp // a floating line reads low without it
	case c.line.level == gpio.High && now.Sub(c.line.highAt) >= PowerDownTime:
		return gpio.High // powered down
	case c.state == ready:
		return gpio.Low
	case c.state == reading && c.pulses <= dataBits:
		return (c.cur.Word>>(dataBits-c.pulses))&1 == 1
	}
	return gpio.High
}

// settle ends a read once its gain pulses are done and the clock is low.
func (c *fakeChip) settle(now time.Time) {
	if c.state != reading || c.pulses < A128.pulses() || c.line.level != gpio.Low {
		return
	}
	c.cur.Pulses = c.pulses
	if c.line.record {
		c.reads = append(c.reads, c.cur)
	}
	switch c.pulses {
	case A128.pulses():
		c.gain = A128
	case B32.pulses():
		c.gain = B32
	default:
		c.gain = A64
	}
	c.state, c.base, c.polls = idle, now, 0
}

// tryReady makes the next word ready if its delay and polls are met.
func (c *fakeChip) tryReady(now time.Time) {
	if c.absent || c.line.level == gpio.High {
		return
	}
	var w word
	switch {
	case len(c.queue) > 0:
		w = c.queue[0]
	case c.gen != nil:
		w = word{v: c.gen(c.genN), after: c.genAfter}
	default:
		return
	}
	if now.Sub(c.base) < w.after || c.polls < w.polls {
		return
	}
	if len(c.queue) > 0 {
		c.queue = c.queue[1:]
	} else {
		c.genN++
	}
	c.state = ready
	c.cur = readRec{Word: w.v & 0xFFFFFF, Gain: c.gain, ReadyAt: now}
}

func (c *fakeChip) rise(now time.Time) {
	if c.absent {
		return
	}
	switch c.state {
	case ready:
		c.state, c.pulses = reading, 1
		c.started++
		c.cur.First = now
	case reading:
		c.pulses++
		if c.pulses > A64.pulses() {
			c.extra++
		}
	case idle:
		c.risenIdle = true
	}
}

func (c *fakeChip) fall(now time.Time, high time.Duration) {
	if c.absent {
		return
	}
	if high >= PowerDownTime {
		c.powerCycles++
		if c.state == reading {
			// The rising edge of the hold was taken for a pulse. With the
			// gain pulses already done it was not one: the read had ended.
			c.cur.Pulses = c.pulses - 1
			c.cur.Aborted = c.cur.Pulses < A128.pulses()
			c.reads = append(c.reads, c.cur)
		}
		// A ready conversion is lost too; the chip wakes up at A128.
		c.state, c.gain, c.base, c.polls, c.risenIdle = idle, A128, now, 0, false
		return
	}
	if c.risenIdle {
		c.early++
		c.risenIdle = false
	}
}

// push queues words that are ready at once.
func (c *fakeChip) push(vs ...uint32) {
	c.line.mu.Lock()
	defer c.line.mu.Unlock()
	for _, v := range vs {
		c.queue = append(c.queue, word{v: v})
	}
}

func (c *fakeChip) pushWords(ws ...word) {
	c.line.mu.Lock()
	defer c.line.mu.Unlock()
	c.queue = append(c.queue, ws...)
}

// snapshot returns the chip's reads and violation counters, ending a read
// whose gain pulses are done.
func (c *fakeChip) snapshot() (reads []readRec, early, extra, powerCycles int) {
	l := c.line
	l.mu.Lock()
	defer l.mu.Unlock()
	c.settle(l.clock.Now())
	return append([]readRec(nil), c.reads...), c.early, c.extra, c.powerCycles
}

func (c *fakeChip) pullSet() gpio.Pull {
	c.line.mu.Lock()
	defer c.line.mu.Unlock()
	return c.pull
}

// poweredDown reports whether the chip is in power-down now.
func (c *fakeChip) poweredDown() bool {
	l := c.line
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.level == gpio.High && l.clock.Now().Sub(l.highAt) >= PowerDownTime
}

// checkProtocol fails t if any chip saw a pulse before data-ready or past
// the 27th, and cross-checks the waveform: every rising edge outside a read
// must be a power-down hold (high for PowerDownTime or more).
func checkProtocol(t *testing.T, l *fakeLine) {
	t.Helper()
	for i, c := range l.chips {
		_, early, extra, _ := c.snapshot()
		if early != 0 || extra != 0 {
			t.Errorf("chip %d: %d pulses before data-ready, %d pulses past the 27th", i, early, extra)
		}
	}
	w := l.edges()
	for i, e := range w {
		if e.Level != gpio.High || e.Read != 0 || l.chips[0].absent {
			continue
		}
		if i+1 < len(w) && w[i+1].At.Sub(e.At) < PowerDownTime {
			t.Errorf("edge %d at +%v: clock pulsed %v high with no data ready",
				i, e.At.Sub(w[0].At), w[i+1].At.Sub(e.At))
		}
	}
}

// pulsesPerRead counts the rising edges of each of chip 0's reads, from the
// waveform.
func pulsesPerRead(l *fakeLine) []int {
	var n []int
	for _, e := range l.edges() {
		if e.Level != gpio.High || e.Read == 0 {
			continue
		}
		for len(n) < e.Read {
			n = append(n, 0)
		}
		n[e.Read-1]++
	}
	return n
}
