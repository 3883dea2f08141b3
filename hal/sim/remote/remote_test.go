package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/scale"
	"github.com/bangfu/cabinet/hal/sim"
	"github.com/bangfu/cabinet/internal/clocktest"
)

// server is a Serve running on a unix socket in a test's temp dir.
type server struct {
	t      *testing.T
	path   string
	cancel context.CancelFunc
	done   chan error
}

func socketPath(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "s")
	if len(p) > 100 {
		t.Fatalf("temp dir too deep for a unix socket: %s", p)
	}
	return p
}

func serve(t *testing.T, path string, c *sim.Cabinet, o *ServerOpts) *server {
	t.Helper()
	os.Remove(path) // a socket file left by an earlier server
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(c, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{t: t, path: path, cancel: cancel, done: make(chan error, 1)}
	go func() { srv.done <- s.Serve(ctx, ln) }()
	t.Cleanup(srv.stop)
	return srv
}

// stop ends Serve and waits for it; calling it twice is fine.
func (s *server) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if err := <-s.done; err != nil {
		s.t.Errorf("Serve: %v", err)
	}
}

func dial(t *testing.T, path string, o *Opts) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newCabinet(t *testing.T, clk *clocktest.Clock, rate float64) *sim.Cabinet {
	t.Helper()
	cfg := sim.Config{Name: "t", Seed: 3, SampleRate: rate, Doors: 2, TempC: 4,
		Shelves: []sim.ShelfConfig{{Shelf: 1, Door: 1}, {Shelf: 2, Door: 2, Cal: scale.Calibration{Offset: -500, CountsPerGram: -40}}}}
	if clk != nil {
		cfg.Clock = clk.Now
	}
	c, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Load(1, "A", 500, 2, 4); err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestCalls drives every call over a real unix socket and checks the
// virtual cabinet saw it (or answered it) as its own devices would.
func TestCalls(t *testing.T) {
	clk := clocktest.New()
	cab := newCabinet(t, clk, 50)
	var mu sync.Mutex
	var reports []string
	var pids []int
	path := socketPath(t)
	serve(t, path, cab, &ServerOpts{SampleRate: 50, Name: "t",
		Cal: map[int]scale.Calibration{2: {Offset: -500, CountsPerGram: -40}},
		OnStatus: func(pid int, st json.RawMessage) {
			mu.Lock()
			defer mu.Unlock()
			pids = append(pids, pid)
			reports = append(reports, string(st))
		}})
	cl := dial(t, path, &Opts{PID: 4242})
	hw := cl.Hardware()
	if len(hw.Doors) != 2 || len(hw.Shelves) != 2 || hw.Shelves[1].Door != 2 || hw.Thermometer == nil || hw.Indicator == nil {
		t.Fatalf("hardware from the layout: %+v", hw)
	}
	if l := cl.Layout(); l.Shelves[0].Cal != sim.DefaultCalibration || l.Shelves[1].Cal.CountsPerGram != -40 || l.SampleRate != 50 {
		t.Fatalf("layout %+v", l)
	}
	lock1, door1 := hw.Doors[0].Lock, hw.Doors[0].Sensor
	door := func() sim.DoorState { return cab.Snapshot().Doors[0] }
	tests := []struct {
		name  string
		do    func(ctx context.Context) error
		check func() error
	}{
		{"lock locked at start", func(ctx context.Context) error {
			locked, err := lock1.Locked(ctx)
			if err == nil && !locked {
				err = errors.New("Locked = false for a locked door")
			}
			return err
		}, nil},
		{"lock energise", func(ctx context.Context) error {
			if err := lock1.Energise(ctx); err != nil {
				return err
			}
			clk.Advance(200 * time.Millisecond) // past LockReleaseTime
			locked, err := lock1.Locked(ctx)
			if err == nil && locked {
				err = errors.New("Locked = true 200ms after Energise")
			}
			return err
		}, func() error {
			if !door().Energised || door().Locked {
				return errors.New("the virtual lock is not energised and retracted")
			}
			return nil
		}},
		{"door closed", func(ctx context.Context) error {
			if err := cab.OpenDoor(1, false); err != nil {
				return err
			}
			clk.Advance(100 * time.Millisecond) // past the debounce
			closed, err := door1.Closed(ctx)
			if err == nil && closed {
				err = errors.New("Closed = true for an open door")
			}
			return err
		}, nil},
		{"lock release", func(ctx context.Context) error { return lock1.Release(ctx) }, func() error {
			if door().Energised {
				return errors.New("still energised")
			}
			return nil
		}},
		{"lock halt", func(ctx context.Context) error {
			if err := lock1.Energise(ctx); err != nil {
				return err
			}
			return lock1.Halt()
		}, func() error {
			if door().Energised {
				return errors.New("Halt left the lock energised")
			}
			return cab.CloseDoor(1)
		}},
		{"scale read", func(ctx context.Context) error {
			r, err := (&rawScale{c: cl, shelf: 1}).ReadRaw(ctx)
			if err != nil {
				return err
			}
			g := sim.DefaultCalibration.Grams(float64(r))
			// The door has just slammed: the shelf may still ring by up
			// to the slam's 30 g.
			if math.Abs(g-cab.Snapshot().Shelves[0].TrueG) > 50 {
				return errors.New("raw sample far from the true load")
			}
			return nil
		}, nil},
		{"display show", func(ctx context.Context) error {
			return hw.Display.Show(ctx, hal.Screen{QR: "https://x/q?c=1", Status: "SCAN"})
		}, func() error {
			if d := cab.Snapshot().Display; d.QR != "https://x/q?c=1" || d.Status != "SCAN" {
				return errors.New("display does not show the screen sent")
			}
			return nil
		}},
		{"display halt", func(context.Context) error { return hw.Display.Halt() }, func() error {
			if d := cab.Snapshot().Display; d.QR != "" || d.Status != "" {
				return errors.New("display not blank after Halt")
			}
			return nil
		}},
		{"thermometer", func(ctx context.Context) error {
			c, err := hw.Thermometer.Celsius(ctx)
			if err == nil && math.Abs(c-4) > 1 {
				err = errors.New("thermometer far from 4 °C")
			}
			return err
		}, nil},
		{"indicator set", func(ctx context.Context) error { return hw.Indicator.Set(ctx, hal.SignalOpen) }, func() error {
			if s := cab.Snapshot().Indicator; s != "open" {
				return errors.New("indicator shows " + s)
			}
			return nil
		}},
		{"indicator halt", func(context.Context) error { return hw.Indicator.Halt() }, func() error {
			if s := cab.Snapshot().Indicator; s != "off" {
				return errors.New("indicator shows " + s)
			}
			return nil
		}},
		{"status report", func(ctx context.Context) error { return cl.Report(ctx, json.RawMessage(`{"mode":"idle"}`)) }, func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(reports) != 1 || reports[0] != `{"mode":"idle"}` || pids[0] != 4242 {
				return errors.New("report not delivered with the hello's pid")
			}
			return nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				if err := tc.check(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestErrors checks what calls fail with: no power and a dead link are
// hal.ErrClosed, a dead load cell hal.ErrFault, a wrong device neither.
func TestErrors(t *testing.T) {
	cab := newCabinet(t, nil, 50)
	path := socketPath(t)
	serve(t, path, cab, &ServerOpts{SampleRate: 50, Cal: map[int]scale.Calibration{2: {Offset: -500, CountsPerGram: -40}}})
	cl := dial(t, path, nil)
	hw := cl.Hardware()
	ctx := ctxT(t)
	tests := []struct {
		name  string
		setup func()
		call  func() error
		want  error // nil: an error that is neither sentinel
	}{
		{"no power: lock", func() { cab.SetPower(false) }, func() error { return hw.Doors[0].Lock.Energise(ctx) }, hal.ErrClosed},
		{"no power: door", nil, func() error { _, err := hw.Doors[1].Sensor.Closed(ctx); return err }, hal.ErrClosed},
		{"no power: scale", nil, func() error { _, err := (&rawScale{c: cl, shelf: 2}).ReadRaw(ctx); return err }, hal.ErrClosed},
		{"no power: display", nil, func() error { return hw.Display.Show(ctx, hal.Screen{Status: "x"}) }, hal.ErrClosed},
		{"no power: thermometer", nil, func() error { _, err := hw.Thermometer.Celsius(ctx); return err }, hal.ErrClosed},
		{"no power: indicator", nil, func() error { return hw.Indicator.Set(ctx, hal.SignalAlarm) }, hal.ErrClosed},
		{"dead load cell", func() {
			cab.SetPower(true)
			if err := cab.FaultScale(1, "dead"); err != nil {
				t.Fatal(err)
			}
		}, func() error { _, err := (&rawScale{c: cl, shelf: 1}).ReadRaw(ctx); return err }, hal.ErrFault},
		{"no such door", nil, func() error { return (&lock{c: cl, door: 9}).Energise(ctx) }, nil},
		{"no such shelf", nil, func() error { _, err := (&rawScale{c: cl, shelf: 9}).ReadRaw(ctx); return err }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			err := tc.call()
			switch {
			case err == nil:
				t.Fatal("call succeeded")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("err %v, want %v", err, tc.want)
			case tc.want == nil && (errors.Is(err, hal.ErrClosed) || errors.Is(err, hal.ErrFault)):
				t.Fatalf("err %v: a wrong request is not a device state", err)
			}
		})
	}
}

// TestReadRawPaced checks a scale read blocks for the sample period, as
// the HX711's data-ready line makes a real read wait.
func TestReadRawPaced(t *testing.T) {
	cab := newCabinet(t, nil, 20)
	path := socketPath(t)
	serve(t, path, cab, &ServerOpts{SampleRate: 20, Cal: map[int]scale.Calibration{2: {Offset: -500, CountsPerGram: -40}}})
	cl := dial(t, path, nil)
	r := &rawScale{c: cl, shelf: 1}
	ctx := ctxT(t)
	start := time.Now()
	const n = 5
	for range n {
		if _, err := r.ReadRaw(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, min := time.Since(start), (n-1)*50*time.Millisecond; got < min {
		t.Fatalf("%d reads at 20 samples/s took %v, less than %v", n, got, min)
	}
}

// TestFilters runs the client's scale filters: they read the shelves'
// true loads through their calibrations, like hal/sim's own scales.
func TestFilters(t *testing.T) {
	cab := newCabinet(t, nil, 50)
	path := socketPath(t)
	serve(t, path, cab, &ServerOpts{SampleRate: 50, Cal: map[int]scale.Calibration{2: {Offset: -500, CountsPerGram: -40}}})
	cl := dial(t, path, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cl.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	snap := cab.Snapshot()
	deadline := time.Now().Add(10 * time.Second)
	for i, sh := range cl.Hardware().Shelves {
		for {
			r, err := sh.Scale.Reading()
			if err == nil && r.Samples == 8 {
				if math.Abs(r.Grams-snap.Shelves[i].TrueG) > 5 {
					t.Fatalf("shelf %d reads %.1f g, true %.1f g", sh.Number, r.Grams, snap.Shelves[i].TrueG)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("shelf %d: no full window: %+v %v", sh.Number, r, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := cl.Run(ctx); err == nil {
		t.Fatal("a second Run was allowed")
	}
}

// TestReconnect breaks the socket under a running client: calls fail with
// hal.ErrClosed, and succeed again once a server is back on the path; a
// server with another cabinet is refused.
func TestReconnect(t *testing.T) {
	cab := newCabinet(t, nil, 50)
	opts := &ServerOpts{SampleRate: 50, Cal: map[int]scale.Calibration{2: {Offset: -500, CountsPerGram: -40}}}
	path := socketPath(t)
	srv := serve(t, path, cab, opts)
	cl := dial(t, path, &Opts{Redial: 20 * time.Millisecond})
	lock1 := cl.Hardware().Doors[0].Lock
	ctx := ctxT(t)
	if _, err := lock1.Locked(ctx); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	if _, err := lock1.Locked(ctx); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("with the simulator gone: %v, want hal.ErrClosed", err)
	}
	// Nothing listens: redials fail, still with hal.ErrClosed.
	time.Sleep(30 * time.Millisecond)
	if _, err := lock1.Locked(ctx); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("with nothing listening: %v, want hal.ErrClosed", err)
	}

	other, err := sim.New(sim.Config{Doors: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := serve(t, path, other, nil)
	waitCall(t, func() error { _, err := lock1.Locked(ctx); return err }, ErrLayoutChanged)
	srv2.stop()

	serve(t, path, cab, opts)
	waitCall(t, func() error { _, err := lock1.Locked(ctx); return err }, nil)
}

// waitCall retries call until it returns want (nil: success), for at most
// a few seconds of redials.
func waitCall(t *testing.T, call func() error, want error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := call()
		if (want == nil && err == nil) || (want != nil && errors.Is(err, want)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("call keeps failing with %v, want %v", err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDialWaits starts the client before the simulator listens.
func TestDialWaits(t *testing.T) {
	cab := newCabinet(t, nil, 50)
	path := socketPath(t)
	done := make(chan *Client, 1)
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := Dial(ctx, path, &Opts{Redial: 10 * time.Millisecond})
		errc <- err
		done <- c
	}()
	time.Sleep(50 * time.Millisecond)
	serve(t, path, cab, &ServerOpts{SampleRate: 50, Cal: map[int]scale.Calibration{2: {Offset: -500, CountsPerGram: -40}}})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	c := <-done
	defer c.Close()
	if len(c.Hardware().Shelves) != 2 {
		t.Fatalf("layout %+v", c.Layout())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, filepath.Join(t.TempDir(), "none"), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial with nothing there: %v", err)
	}
}

// newTwoCellCabinet is newCabinet with shelf 1 on two load cells, its
// units in a lane towards the right cell.
func newTwoCellCabinet(t *testing.T, rate float64) *sim.Cabinet {
	t.Helper()
	c, err := sim.New(sim.Config{Name: "t", Seed: 3, SampleRate: rate, Doors: 2, TempC: 4,
		Shelves: []sim.ShelfConfig{{Shelf: 1, Door: 1, EmptyG: 600, TwoCell: true}, {Shelf: 2, Door: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetLane(1, "A", 0.8); err != nil {
		t.Fatal(err)
	}
	if err := c.Load(1, "A", 500, 2, 4); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTwoCell carries a two-cell shelf over the socket: the layout says
// so, the client's hal shelf has a Right scale reading the right cell
// while its Scale reads both; a one-cell shelf has no Right, and asking
// for its right cell is a bad request, not a device state.
func TestTwoCell(t *testing.T) {
	cab := newTwoCellCabinet(t, 50)
	path := socketPath(t)
	serve(t, path, cab, &ServerOpts{SampleRate: 50, Name: "t"})
	cl := dial(t, path, nil)
	if l := cl.Layout(); !l.Shelves[0].TwoCell || l.Shelves[1].TwoCell {
		t.Fatalf("layout %+v", l)
	}
	hw := cl.Hardware()
	if hw.Shelves[0].Right == nil || hw.Shelves[1].Right != nil {
		t.Fatalf("hal shelves %+v", hw.Shelves)
	}
	if got := hw.Shelves[0].Right.String(); got != "t hx711 shelf 1 right" {
		t.Errorf("right scale named %q", got)
	}
	ctx := ctxT(t)
	if _, err := (&rawScale{c: cl, shelf: 2, right: true}).ReadRaw(ctx); err == nil ||
		errors.Is(err, hal.ErrClosed) || errors.Is(err, hal.ErrFault) {
		t.Errorf("right cell of a one-cell shelf: %v", err)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cl.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	st := cab.Snapshot().Shelves[0]
	if st.RightG == nil || *st.RightG < 300+4*500*0.75 {
		t.Fatalf("the virtual shelf's right cell: %+v", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		tot, errT := hw.Shelves[0].Scale.Reading()
		r, errR := hw.Shelves[0].Right.Reading()
		if errT == nil && errR == nil && tot.Samples == 8 && r.Samples == 8 {
			if math.Abs(tot.Grams-st.TrueG) > 5 || math.Abs(r.Grams-*st.RightG) > 5 {
				t.Fatalf("over the socket: total %.1f g, right %.1f g; true %.1f g and %.1f g", tot.Grams, r.Grams, st.TrueG, *st.RightG)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no full windows: total %+v %v, right %+v %v", tot, errT, r, errR)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Dead cells fail the right cell's reads as the total's.
	if err := cab.FaultScale(1, "dead"); err != nil {
		t.Fatal(err)
	}
	if _, err := (&rawScale{c: cl, shelf: 1, right: true}).ReadRaw(ctx); !errors.Is(err, hal.ErrFault) {
		t.Errorf("dead right cell: %v, want hal.ErrFault", err)
	}
}

// TestOlderPeers: the two-cell additions leave version 1 peers working. A
// client built before them skips "two_cell" in the layout and reads the
// shelf's total; a client now, on a server from before them (a layout
// without "two_cell", no scale.read_right), builds one-cell shelves.
func TestOlderPeers(t *testing.T) {
	t.Run("older client", func(t *testing.T) {
		cab := newTwoCellCabinet(t, 50)
		path := socketPath(t)
		serve(t, path, cab, &ServerOpts{SampleRate: 50})
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		enc, dec := json.NewEncoder(conn), json.NewDecoder(conn)
		// What the client sent and understood before two cells.
		type oldShelf struct {
			Shelf int               `json:"shelf"`
			Door  int               `json:"door"`
			Cal   scale.Calibration `json:"cal"`
		}
		var hello struct {
			ID     uint64 `json:"id"`
			Err    string `json:"err"`
			Layout struct {
				Shelves []oldShelf `json:"shelves"`
			} `json:"layout"`
		}
		if err := enc.Encode(map[string]any{"id": 1, "op": "hello", "version": 1, "pid": 7}); err != nil {
			t.Fatal(err)
		}
		if err := dec.Decode(&hello); err != nil || hello.Err != "" || len(hello.Layout.Shelves) != 2 {
			t.Fatalf("hello: %+v, %v", hello, err)
		}
		if err := enc.Encode(map[string]any{"id": 2, "op": "scale.read", "shelf": 1}); err != nil {
			t.Fatal(err)
		}
		var read struct {
			ID  uint64 `json:"id"`
			Err string `json:"err"`
			Raw int32  `json:"raw"`
		}
		if err := dec.Decode(&read); err != nil || read.Err != "" {
			t.Fatalf("scale.read: %+v, %v", read, err)
		}
		if g, want := hello.Layout.Shelves[0].Cal.Grams(float64(read.Raw)), cab.Snapshot().Shelves[0].TrueG; math.Abs(g-want) > 20 {
			t.Errorf("an older client reads %.1f g, the shelf's total is %.1f g", g, want)
		}
	})
	t.Run("older server", func(t *testing.T) {
		path := socketPath(t)
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		defer wg.Wait()
		defer ln.Close()
		wg.Go(func() { oldServer(t, ln) })
		cl := dial(t, path, nil)
		hw := cl.Hardware()
		if len(hw.Shelves) != 1 || hw.Shelves[0].Right != nil || cl.Layout().Shelves[0].TwoCell {
			t.Fatalf("shelves from an older server: %+v", hw.Shelves)
		}
		r, err := (&rawScale{c: cl, shelf: 1}).ReadRaw(ctxT(t))
		if err != nil || r != 84213+100*900 {
			t.Fatalf("read %d, %v", r, err)
		}
		cl.Close()
	})
}

// oldServer answers one connection as a version 1 server from before two
// load cells: a layout without "two_cell", and a fixed 900 g on scale.read.
func oldServer(t *testing.T, ln net.Listener) {
	conn, err := ln.Accept()
	if err != nil {
		return
	}
	defer conn.Close()
	dec, enc := json.NewDecoder(conn), json.NewEncoder(conn)
	for {
		var req struct {
			ID uint64 `json:"id"`
			Op string `json:"op"`
		}
		if err := dec.Decode(&req); err != nil {
			return
		}
		var resp string
		switch req.Op {
		case "hello":
			resp = `{"id":%d,"layout":{"name":"old","doors":[1],"shelves":[{"shelf":1,"door":1,"cal":{"Offset":84213,"CountsPerGram":100}}],"sample_rate":50,"thermometer":true,"indicator":true}}`
		case "scale.read":
			resp = `{"id":%d,"raw":174213}`
		default:
			resp = `{"id":%d,"err":"unknown operation","err_kind":"bad_request"}`
		}
		if err := enc.Encode(json.RawMessage(fmt.Sprintf(resp, req.ID))); err != nil {
			t.Errorf("old server: %v", err)
			return
		}
	}
}

// TestLayoutTwoCellChanges: a simulator back with a shelf on another
// number of load cells is another cabinet.
func TestLayoutTwoCellChanges(t *testing.T) {
	one := Layout{Name: "x", Doors: []int{1}, Shelves: []ShelfLayout{{Shelf: 1, Door: 1, Cal: sim.DefaultCalibration}}, SampleRate: 10}
	two := one
	two.Shelves = []ShelfLayout{{Shelf: 1, Door: 1, Cal: sim.DefaultCalibration, TwoCell: true}}
	if one.equal(two) || !two.equal(two) {
		t.Error("Layout.equal does not tell one load cell from two")
	}
}
