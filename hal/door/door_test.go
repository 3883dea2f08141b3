package door

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/internal/clocktest"
)

// guard bounds every wait in these tests so a broken driver fails the test
// instead of hanging it. It is not a speed limit: nothing takes near it.
const guard = 10 * time.Second

// wait is one WaitForEdge call of the driver, held until the test sends an
// edge on EdgesChan or lets the wait time out.
type wait struct {
	timeout time.Duration
	expired chan struct{}
	once    sync.Once
}

// timeOut lets the wait end without an edge.
func (w *wait) timeOut() { w.once.Do(func() { close(w.expired) }) }

// stepPin is a gpiotest.Pin whose WaitForEdge hands each wait to the test,
// so the test decides whether an edge or the timeout comes first and the
// debounce is checked step by step without a clock.
type stepPin struct {
	*gpiotest.Pin
	waits chan *wait

	mu   sync.Mutex
	last *wait // the wait the test took last
}

func newStepPin(initial gpio.Level) *stepPin {
	return &stepPin{
		Pin:   &gpiotest.Pin{N: "DOOR", Num: 22, L: initial, EdgesChan: make(chan gpio.Level)},
		waits: make(chan *wait),
	}
}

func (p *stepPin) WaitForEdge(timeout time.Duration) bool {
	w := &wait{timeout: timeout, expired: make(chan struct{})}
	p.waits <- w
	select {
	case l := <-p.EdgesChan:
		return p.Out(l) == nil
	case <-w.expired:
		return false
	}
}

// next returns the driver's next WaitForEdge call.
func (p *stepPin) next(t *testing.T) *wait {
	t.Helper()
	select {
	case w := <-p.waits:
		p.mu.Lock()
		p.last = w
		p.mu.Unlock()
		return w
	case <-time.After(guard):
		t.Fatal("the driver never waited for an edge")
		return nil
	}
}

// edge delivers level l as an edge to the driver's current wait.
func (p *stepPin) edge(t *testing.T, l gpio.Level) {
	t.Helper()
	select {
	case p.EdgesChan <- l:
	case <-time.After(guard):
		t.Fatal("the driver did not take the edge")
	}
}

// expireHeld lets the wait the test holds time out.
func (p *stepPin) expireHeld() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last != nil {
		p.last.timeOut()
	}
}

// drain lets every wait time out until stop is closed.
func (p *stepPin) drain(stop <-chan struct{}) {
	p.expireHeld()
	for {
		select {
		case w := <-p.waits:
			w.timeOut()
		case <-stop:
			return
		}
	}
}

// noEdgePin is a gpiotest.Pin that cannot detect edges, like a line on a
// GPIO expander.
type noEdgePin struct{ *gpiotest.Pin }

func (p noEdgePin) In(pull gpio.Pull, edge gpio.Edge) error {
	if edge != gpio.NoEdge {
		return errors.New("edge detection not supported")
	}
	return p.Pin.In(pull, edge)
}

// start runs d.Run in a goroutine and returns a function that cancels it and
// returns Run's error once it returned. drain, when not nil, runs after the
// cancel until Run returned, to release a driver blocked in its pin.
func start(t *testing.T, d *Dev, drain func(stop <-chan struct{})) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var (
		once   sync.Once
		runErr error
	)
	stop = func() error {
		once.Do(func() {
			cancel()
			returned := make(chan struct{})
			if drain != nil {
				go drain(returned)
			}
			defer close(returned)
			select {
			case runErr = <-done:
			case <-time.After(guard):
				t.Error("Run did not return after its context ended")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func change(t *testing.T, d *Dev) bool {
	t.Helper()
	select {
	case c := <-d.Changes():
		return c
	case <-time.After(guard):
		t.Fatal("no debounced change arrived")
		return false
	}
}

func noChange(t *testing.T, d *Dev) {
	t.Helper()
	select {
	case c := <-d.Changes():
		t.Fatalf("unexpected debounced change to closed=%v", c)
	default:
	}
}

// TestEdgeOpenClose runs the driver against a plain gpiotest.Pin on the real
// clock.
func TestEdgeOpenClose(t *testing.T) {
	pin := &gpiotest.Pin{N: "DOOR", Num: 22, L: gpio.Low, EdgesChan: make(chan gpio.Level)}
	d, err := New("door1", pin, &Opts{Debounce: 2 * time.Millisecond, Pull: gpio.PullNoChange})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Edges() {
		t.Fatal("Edges() = false for a pin with edge detection")
	}
	stop := start(t, d, nil)
	if !change(t, d) {
		t.Fatal("initial state is open, want closed")
	}
	for _, tt := range []struct {
		level  gpio.Level
		closed bool
	}{{gpio.High, false}, {gpio.Low, true}, {gpio.High, false}} {
		pin.EdgesChan <- tt.level
		if got := change(t, d); got != tt.closed {
			t.Fatalf("after edge to %v: closed=%v, want %v", tt.level, got, tt.closed)
		}
		got, err := d.Closed(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.closed {
			t.Fatalf("Closed() = %v, want %v", got, tt.closed)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
}

func TestEdgeBounce(t *testing.T) {
	const debounce = 40 * time.Millisecond
	pin := newStepPin(gpio.Low)
	d, err := New("door1", pin, &Opts{Debounce: debounce})
	if err != nil {
		t.Fatal(err)
	}
	start(t, d, pin.drain)

	// Run first waits for a quiet Debounce to learn the state.
	w := pin.next(t)
	if w.timeout != debounce {
		t.Fatalf("initial wait %v, want the debounce %v", w.timeout, debounce)
	}
	w.timeOut()
	if !change(t, d) {
		t.Fatal("initial state is open, want closed")
	}
	if w := pin.next(t); w.timeout != edgeIdle {
		t.Fatalf("idle wait %v, want %v", w.timeout, edgeIdle)
	}

	// bounce sends edges, each one inside the debounce wait the previous one
	// started, then lets the last wait time out: the pin was quiet for
	// Debounce.
	bounce := func(t *testing.T, levels ...gpio.Level) {
		t.Helper()
		var w *wait
		for _, l := range levels {
			pin.edge(t, l)
			w = pin.next(t)
			if w.timeout != debounce {
				t.Fatalf("wait after an edge is %v, want the debounce %v", w.timeout, debounce)
			}
			noChange(t, d)
		}
		w.timeOut()
		// The next wait is an idle one: the driver is done with the bounce.
		if w := pin.next(t); w.timeout != edgeIdle {
			t.Fatalf("wait after the bounce is %v, want idle %v", w.timeout, edgeIdle)
		}
	}

	t.Run("bounce ending open is one change", func(t *testing.T) {
		bounce(t, gpio.High, gpio.Low, gpio.High, gpio.Low, gpio.High)
		if change(t, d) {
			t.Fatal("change to closed, want open")
		}
		noChange(t, d)
	})
	t.Run("bounce ending where it started is no change", func(t *testing.T) {
		bounce(t, gpio.Low, gpio.High, gpio.Low, gpio.High)
		noChange(t, d)
	})
	t.Run("Closed is the debounced state during a bounce", func(t *testing.T) {
		pin.edge(t, gpio.Low) // the raw level now says closed
		w := pin.next(t)
		got, err := d.Closed(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got {
			t.Fatal("Closed() = true while the close is still bouncing")
		}
		w.timeOut()
		pin.next(t)
		if !change(t, d) {
			t.Fatal("change to open, want closed")
		}
	})
	t.Run("lost edge is caught on the idle read", func(t *testing.T) {
		// The level goes open with no edge reported.
		if err := pin.Out(gpio.High); err != nil {
			t.Fatal(err)
		}
		// The pending idle wait times out; the driver sees the new level
		// and debounces it like an edge.
		pin.expireHeld()
		w := pin.next(t)
		if w.timeout != debounce {
			t.Fatalf("wait after a lost edge is %v, want the debounce %v", w.timeout, debounce)
		}
		noChange(t, d)
		w.timeOut()
		pin.next(t)
		if change(t, d) {
			t.Fatal("change to closed, want open")
		}
	})
}

// fakePoll steps a polling driver on a fake clock.
type fakePoll struct {
	t    *testing.T
	fc   *clocktest.Clock
	step time.Duration
}

func newFakePoll(t *testing.T, d *Dev) *fakePoll {
	fc := clocktest.New()
	d.clk = fc
	return &fakePoll{t: t, fc: fc, step: min(d.poll, d.debounce)}
}

// waiting returns once the driver waits on the clock, that is once it has
// dealt with the previous sample.
func (f *fakePoll) waiting() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.t.Context(), guard)
	defer cancel()
	if err := f.fc.BlockUntilContext(ctx, 1); err != nil {
		f.t.Fatal("the driver never waited for its next sample")
	}
}

// sample lets the driver take its next sample and deal with it.
func (f *fakePoll) sample() {
	f.t.Helper()
	f.waiting()
	f.fc.Advance(f.step)
	f.waiting()
}

func TestPollFallback(t *testing.T) {
	const poll, debounce = 10 * time.Millisecond, 30 * time.Millisecond
	pin := noEdgePin{&gpiotest.Pin{N: "DOOR", Num: 22, L: gpio.High}}
	d, err := New("door1", pin, &Opts{Debounce: debounce, Poll: poll, Pull: gpio.PullUp})
	if err != nil {
		t.Fatal(err)
	}
	if d.Edges() {
		t.Fatal("Edges() = true for a pin without edge detection")
	}
	if pin.Pull() != gpio.PullUp {
		t.Fatalf("pull = %v, want PullUp", pin.Pull())
	}
	f := newFakePoll(t, d)
	start(t, d, nil)

	// samplesUntilChange counts the samples until a change arrives.
	samplesUntilChange := func(t *testing.T) (closed bool, samples int) {
		t.Helper()
		for samples = 1; samples <= 100; samples++ {
			f.sample()
			select {
			case c := <-d.Changes():
				return c, samples
			default:
			}
		}
		t.Fatal("no change after 100 samples")
		return false, 0
	}

	// The level must hold for Debounce, three polls, before it counts.
	closed, n := samplesUntilChange(t)
	if closed || n != 3 {
		t.Fatalf("initial change closed=%v after %d samples, want open after 3", closed, n)
	}
	t.Run("bounce ending closed is one change", func(t *testing.T) {
		for _, l := range []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High} {
			if err := pin.Out(l); err != nil {
				t.Fatal(err)
			}
			f.sample()
			noChange(t, d)
		}
		if err := pin.Out(gpio.Low); err != nil {
			t.Fatal(err)
		}
		closed, n := samplesUntilChange(t)
		if !closed || n != 4 {
			// Seen on the first sample, held on the next three.
			t.Fatalf("change closed=%v after %d samples, want closed after 4", closed, n)
		}
		noChange(t, d)
	})
	t.Run("Closed is the debounced state", func(t *testing.T) {
		if err := pin.Out(gpio.High); err != nil {
			t.Fatal(err)
		}
		f.sample()
		got, err := d.Closed(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !got {
			t.Fatal("Closed() = false one sample after the switch opened")
		}
	})
}

// TestPollRealClock runs the polling fallback on the real clock.
func TestPollRealClock(t *testing.T) {
	pin := noEdgePin{&gpiotest.Pin{N: "DOOR", Num: 22, L: gpio.Low}}
	d, err := New("door1", pin, &Opts{Debounce: 2 * time.Millisecond, Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, d, nil)
	if !change(t, d) {
		t.Fatal("initial state is open, want closed")
	}
	if err := pin.Out(gpio.High); err != nil {
		t.Fatal(err)
	}
	if change(t, d) {
		t.Fatal("change to closed, want open")
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
}

func TestClosedBeforeRun(t *testing.T) {
	tests := []struct {
		name        string
		closedLevel gpio.Level
		level       gpio.Level
		want        bool
	}{
		{"closed low, reads low", gpio.Low, gpio.Low, true},
		{"closed low, reads high", gpio.Low, gpio.High, false},
		{"closed high, reads high", gpio.High, gpio.High, true},
		{"closed high, reads low", gpio.High, gpio.Low, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pin := &gpiotest.Pin{N: "DOOR", Num: 22, L: !tt.level, EdgesChan: make(chan gpio.Level)}
			const poll, debounce = 10 * time.Millisecond, 20 * time.Millisecond
			d, err := New("door1", pin, &Opts{ClosedLevel: tt.closedLevel, Debounce: debounce, Poll: poll})
			if err != nil {
				t.Fatal(err)
			}
			f := newFakePoll(t, d)
			type result struct {
				closed bool
				err    error
			}
			res := make(chan result, 1)
			go func() {
				c, err := d.Closed(t.Context())
				res <- result{c, err}
			}()
			// The switch bounces to the final level on the first sample.
			f.waiting()
			if err := pin.Out(tt.level); err != nil {
				t.Fatal(err)
			}
			f.fc.Advance(poll)
			f.waiting()
			// One more sample is only half the debounce.
			f.sample()
			select {
			case r := <-res:
				t.Fatalf("Closed returned %+v before the level held for %v", r, debounce)
			default:
			}
			f.fc.Advance(poll)
			select {
			case r := <-res:
				if r.err != nil {
					t.Fatal(r.err)
				}
				if r.closed != tt.want {
					t.Fatalf("Closed() = %v, want %v", r.closed, tt.want)
				}
			case <-time.After(guard):
				t.Fatal("Closed did not return once the level held")
			}
		})
	}
}

func TestClosedCancelled(t *testing.T) {
	pin := &gpiotest.Pin{N: "DOOR", Num: 22, EdgesChan: make(chan gpio.Level)}
	d, err := New("door1", pin, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakePoll(t, d)
	ctx, cancel := context.WithCancel(t.Context())
	res := make(chan error, 1)
	go func() {
		_, err := d.Closed(ctx)
		res <- err
	}()
	// The clock never moves: only the context can end the wait.
	f.waiting()
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Closed = %v, want context.Canceled", err)
		}
	case <-time.After(guard):
		t.Fatal("Closed ignored the cancelled context")
	}
}

// Closed called while Run is still learning the state waits for Run instead
// of sampling on its own.
func TestClosedWaitsForRun(t *testing.T) {
	pin := newStepPin(gpio.High)
	d, err := New("door1", pin, nil)
	if err != nil {
		t.Fatal(err)
	}
	start(t, d, pin.drain)
	w := pin.next(t) // Run's initial quiet wait
	res := make(chan bool, 1)
	go func() {
		c, err := d.Closed(t.Context())
		if err != nil {
			t.Error(err)
		}
		res <- c
	}()
	w.timeOut()
	select {
	case c := <-res:
		if c {
			t.Fatal("Closed() = true, want open")
		}
	case <-time.After(guard):
		t.Fatal("Closed did not return once Run knew the state")
	}
}

func TestRunTwice(t *testing.T) {
	pin := newStepPin(gpio.Low)
	d, err := New("door1", pin, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, d, pin.drain)
	pin.next(t) // Run is running
	if err := d.Run(t.Context()); err == nil || !strings.HasPrefix(err.Error(), "door: door1:") {
		t.Fatalf("second Run = %v, want a door error", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// After Run returned it may run again.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := d.Run(ctx); err != nil {
		t.Fatalf("Run after Run returned = %v", err)
	}
}

func TestChangesDropOldest(t *testing.T) {
	d, err := New("door1", noEdgePin{&gpiotest.Pin{N: "DOOR"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = ChangesBuffer + 5
	for i := range n {
		d.publish(gpio.Level(i%2 == 1)) // Low (closed), High, Low…
	}
	if got := len(d.Changes()); got != ChangesBuffer {
		t.Fatalf("%d changes queued, want %d", got, ChangesBuffer)
	}
	var got []bool
	for range ChangesBuffer {
		got = append(got, <-d.Changes())
	}
	for i, c := range got {
		// The five oldest were dropped.
		if want := (i+n-ChangesBuffer)%2 == 0; c != want {
			t.Fatalf("change %d = %v, want %v", i, c, want)
		}
	}
	if last, want := got[len(got)-1], (n-1)%2 == 0; last != want {
		t.Fatalf("newest change %v is not the current state", last)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		pin  gpio.PinIn
		opts *Opts
	}{
		{"nil pin", nil, nil},
		{"negative debounce", &gpiotest.Pin{N: "DOOR"}, &Opts{Debounce: -1}},
		{"negative poll", &gpiotest.Pin{N: "DOOR"}, &Opts{Poll: -1}},
		{"input fails", deadPin{&gpiotest.Pin{N: "DOOR"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New("door1", tt.pin, tt.opts)
			if err == nil {
				t.Fatalf("New = %v, want an error", d)
			}
			if !strings.HasPrefix(err.Error(), "door: door1:") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

type deadPin struct{ *gpiotest.Pin }

func (deadPin) In(gpio.Pull, gpio.Edge) error { return errors.New("line busy") }

func TestStringHalt(t *testing.T) {
	d, err := New("door1", &gpiotest.Pin{N: "DOOR", Num: 22}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.String(), "door door1 on DOOR(22)"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
}

// The driver latches an opening (hal.DoorLatch): a door that opened and
// shut again before the firmware read Closed is reported once by Opened.
func TestEdgeLatchesOpening(t *testing.T) {
	pin := &gpiotest.Pin{N: "DOOR", Num: 22, L: gpio.Low, EdgesChan: make(chan gpio.Level)}
	d, err := New("door1", pin, &Opts{Debounce: 2 * time.Millisecond, Pull: gpio.PullNoChange})
	if err != nil {
		t.Fatal(err)
	}
	var _ hal.DoorLatch = d
	stop := start(t, d, nil)
	if !change(t, d) {
		t.Fatal("initial state is open, want closed")
	}
	if opened, _ := d.Opened(t.Context()); opened {
		t.Fatal("latched before any opening")
	}
	pin.EdgesChan <- gpio.High
	if change(t, d) {
		t.Fatal("edge to High did not open")
	}
	pin.EdgesChan <- gpio.Low
	if !change(t, d) {
		t.Fatal("edge to Low did not close")
	}
	if closed, _ := d.Closed(t.Context()); !closed {
		t.Fatal("Closed() = false after the door shut")
	}
	if opened, err := d.Opened(t.Context()); err != nil || !opened {
		t.Fatalf("Opened() = %v, %v: the opening was not latched", opened, err)
	}
	if opened, _ := d.Opened(t.Context()); opened {
		t.Fatal("the latch did not clear")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
