package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/scale"
	"github.com/bangfu/cabinet/internal/clock"
)

// Opts configures a Client. Zero fields take the defaults in their comment.
type Opts struct {
	// Redial is the least time between two dial attempts after the
	// connection broke; default 200ms. Calls in between fail at once.
	Redial time.Duration
	// HaltTimeout bounds the context-free Halt calls; default 1s.
	HaltTimeout time.Duration
	// Scale configures each shelf's filter; its Logger defaults to Logger.
	Scale scale.Opts
	// PID is what the hello reports as the device process; default
	// os.Getpid(). The simulator uses it to ignore reports of a process
	// it has already replaced.
	PID    int
	Logger *slog.Logger // default discards
}

// Client is the device side: a hal.Cabinet whose devices are calls to the
// simulator. All methods are safe for concurrent use.
type Client struct {
	path    string
	o       Opts
	log     *slog.Logger
	layout  Layout
	hw      hal.Cabinet
	filters []*scale.Filter
	running sync.Mutex // held by Run

	dialMu sync.Mutex // one dial at a time
	mu     sync.Mutex
	cur    *conn
	lastAt time.Time // last dial attempt
	closed bool
	lost   bool // the link is down and its loss was logged
	wg     sync.WaitGroup
	nextID uint64
}

// conn is one connection and the calls waiting on it.
type conn struct {
	c       net.Conn
	wmu     sync.Mutex
	enc     *json.Encoder
	mu      sync.Mutex
	pending map[uint64]chan response
	done    chan struct{} // closed when the connection is dead
	err     error         // why, set before done closes
}

// Dial connects to the simulator's socket at path, retrying until ctx ends
// (the simulator may still be starting), and builds the hardware from the
// layout it reports. o may be nil.
func Dial(ctx context.Context, path string, o *Opts) (*Client, error) {
	var opts Opts
	if o != nil {
		opts = *o
	}
	if opts.Redial < 0 || opts.HaltTimeout < 0 {
		return nil, errors.New("remote: negative durations in options")
	}
	if opts.Redial == 0 {
		opts.Redial = 200 * time.Millisecond
	}
	if opts.HaltTimeout == 0 {
		opts.HaltTimeout = time.Second
	}
	if opts.PID == 0 {
		opts.PID = os.Getpid()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Scale.Logger == nil {
		opts.Scale.Logger = opts.Logger
	}
	c := &Client{path: path, o: opts, log: opts.Logger.With("sim_socket", path)}
	var last error
	for {
		cn, l, err := c.dial(ctx)
		if err == nil {
			c.layout = l
			c.cur = cn
			break
		}
		last = err
		if clock.Sleep(ctx, opts.Redial) != nil {
			c.wg.Wait()
			return nil, fmt.Errorf("remote: dial %s: %w (last error: %v)", path, ctx.Err(), last)
		}
	}
	if err := c.build(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// build makes the hal devices from the layout.
func (c *Client) build() error {
	l := c.layout
	if len(l.Doors) == 0 || len(l.Shelves) == 0 || l.SampleRate <= 0 {
		return fmt.Errorf("remote: the simulator reports no usable cabinet: %+v", l)
	}
	for _, n := range l.Doors {
		c.hw.Doors = append(c.hw.Doors, hal.Door{Number: n, Lock: &lock{c: c, door: n}, Sensor: &doorSensor{c: c, door: n}})
	}
	for _, sh := range l.Shelves {
		opts := c.o.Scale
		opts.Logger = opts.Logger.With("shelf", sh.Shelf)
		f, err := scale.New(&rawScale{c: c, shelf: sh.Shelf}, sh.Cal, &opts)
		if err != nil {
			return fmt.Errorf("remote: shelf %d: %w", sh.Shelf, err)
		}
		c.filters = append(c.filters, f)
		hs := hal.Shelf{Number: sh.Shelf, Door: sh.Door, Scale: f}
		if sh.TwoCell {
			ro := c.o.Scale
			ro.Logger = ro.Logger.With("shelf", sh.Shelf, "cell", "right")
			r, err := scale.New(&rawScale{c: c, shelf: sh.Shelf, right: true}, sh.Cal, &ro)
			if err != nil {
				return fmt.Errorf("remote: shelf %d right cell: %w", sh.Shelf, err)
			}
			c.filters = append(c.filters, r)
			hs.Right = r
		}
		c.hw.Shelves = append(c.hw.Shelves, hs)
	}
	c.hw.Display = &display{c: c}
	if l.Thermo {
		c.hw.Thermometer = &thermometer{c: c}
	}
	if l.Indicator {
		c.hw.Indicator = &indicator{c: c}
	}
	return nil
}

// Layout is the cabinet the simulator reported at Dial.
func (c *Client) Layout() Layout { return c.layout }

// Hardware returns the remote devices. The Scales (and a two-cell shelf's
// Right) only have readings while Run is running.
func (c *Client) Hardware() hal.Cabinet {
	hw := c.hw
	hw.Doors = slices.Clone(hw.Doors)
	hw.Shelves = slices.Clone(hw.Shelves)
	return hw
}

// Run samples every shelf's scale until ctx ends, then returns nil. Only
// one Run may be active.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.TryLock() {
		return errors.New("remote: Run is already running")
	}
	defer c.running.Unlock()
	errs := make([]error, len(c.filters))
	var wg sync.WaitGroup
	for i, f := range c.filters {
		wg.Go(func() { errs[i] = f.Run(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Report sends an opaque status document (the firmware's status) to the
// simulator, which shows it in its API.
func (c *Client) Report(ctx context.Context, status json.RawMessage) error {
	_, err := c.call(ctx, statusDev{}, request{Op: opStatus, Status: status})
	return err
}

type statusDev struct{}

func (statusDev) String() string { return "status report" }

// Close drops the connection; calls fail with hal.ErrClosed afterwards.
// Call it after Run has returned.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	cur := c.cur
	c.cur = nil
	c.mu.Unlock()
	if cur != nil {
		cur.kill(errors.New("client closed"))
	}
	c.wg.Wait()
	return nil
}

// dial opens a connection and says hello.
func (c *Client) dial(ctx context.Context) (*conn, Layout, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, Layout{}, err
	}
	cn := &conn{c: nc, enc: json.NewEncoder(nc), pending: map[uint64]chan response{}, done: make(chan struct{})}
	c.wg.Go(func() { cn.read() })
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := c.roundTrip(hctx, cn, request{Op: opHello, Version: protocolVersion, PID: c.o.PID})
	if err == nil && r.Err != "" {
		err = errors.New(r.Err)
	}
	if err == nil && r.Layout == nil {
		err = errors.New("hello answered without a layout")
	}
	if err != nil {
		cn.kill(err)
		return nil, Layout{}, fmt.Errorf("remote: hello: %w", err)
	}
	return cn, *r.Layout, nil
}

// session returns the live connection, dialling again when the last one
// broke and the redial interval has passed.
func (c *Client) session(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	cur, closed := c.cur, c.closed
	c.mu.Unlock()
	if closed {
		return nil, errors.New("client closed")
	}
	if cur != nil && !cur.dead() {
		return cur, nil
	}
	c.dialMu.Lock()
	defer c.dialMu.Unlock()
	c.mu.Lock()
	cur, closed = c.cur, c.closed
	if cur != nil && !cur.dead() {
		c.mu.Unlock()
		return cur, nil // another call redialled meanwhile
	}
	if closed {
		c.mu.Unlock()
		return nil, errors.New("client closed")
	}
	var why error = errors.New("not connected")
	if cur != nil {
		why = cur.err
		if !c.lost {
			c.lost = true
			c.log.Warn("simulator socket lost; redialling", "err", cur.err)
		}
	}
	if time.Since(c.lastAt) < c.o.Redial {
		c.mu.Unlock()
		return nil, why
	}
	c.lastAt = time.Now()
	c.mu.Unlock()

	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	cn, l, err := c.dial(dctx)
	cancel()
	if err == nil && !l.equal(c.layout) {
		cn.kill(ErrLayoutChanged)
		err = fmt.Errorf("%w: now %+v", ErrLayoutChanged, l)
		c.log.Error("simulator socket", "err", err)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cn.kill(errors.New("client closed"))
		return nil, errors.New("client closed")
	}
	c.cur = cn
	if c.lost {
		c.lost = false
		c.log.Info("simulator socket back")
	}
	return cn, nil
}

// call performs one call for device dev, mapping every failure of the
// link to hal.ErrClosed.
func (c *Client) call(ctx context.Context, dev fmt.Stringer, req request) (response, error) {
	if err := ctx.Err(); err != nil {
		return response{}, fmt.Errorf("remote: %s: %w", dev, err)
	}
	cn, err := c.session(ctx)
	if err != nil {
		return response{}, fmt.Errorf("remote: %s: %w: %w", dev, err, hal.ErrClosed)
	}
	r, err := c.roundTrip(ctx, cn, req)
	if err != nil {
		if ctx.Err() != nil {
			return response{}, fmt.Errorf("remote: %s: %w", dev, ctx.Err())
		}
		return response{}, fmt.Errorf("remote: %s: %v: %w", dev, err, hal.ErrClosed)
	}
	if r.Err != "" {
		return r, remoteError(dev, r)
	}
	return r, nil
}

// roundTrip sends req on cn and waits for its response.
func (c *Client) roundTrip(ctx context.Context, cn *conn, req request) (response, error) {
	c.mu.Lock()
	c.nextID++
	req.ID = c.nextID
	c.mu.Unlock()
	ch := make(chan response, 1)
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return response{}, cn.err
	}
	cn.pending[req.ID] = ch
	cn.mu.Unlock()
	defer func() {
		cn.mu.Lock()
		delete(cn.pending, req.ID)
		cn.mu.Unlock()
	}()
	cn.wmu.Lock()
	cn.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	err := cn.enc.Encode(req)
	cn.wmu.Unlock()
	if err != nil {
		cn.kill(err)
		return response{}, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-cn.done:
		return response{}, cn.err
	case <-ctx.Done():
		return response{}, ctx.Err()
	}
}

// read dispatches responses until the connection breaks.
func (cn *conn) read() {
	sc := bufio.NewScanner(cn.c)
	sc.Buffer(make([]byte, 0, 4096), maxLineBytes)
	for sc.Scan() {
		var r response
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			cn.kill(fmt.Errorf("bad response: %w", err))
			return
		}
		cn.mu.Lock()
		ch, ok := cn.pending[r.ID]
		cn.mu.Unlock()
		if ok {
			ch <- r // buffered, and each id answered once
		}
	}
	err := sc.Err()
	if err == nil {
		err = errors.New("simulator closed the connection")
	}
	cn.kill(err)
}

// kill closes the connection once, failing every call waiting on it.
func (cn *conn) kill(err error) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.err != nil {
		return
	}
	cn.err = err
	cn.c.Close()
	close(cn.done)
}

func (cn *conn) dead() bool {
	select {
	case <-cn.done:
		return true
	default:
		return false
	}
}

// halt runs a context-free Halt call within HaltTimeout.
func (c *Client) halt(dev fmt.Stringer, req request) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.o.HaltTimeout)
	defer cancel()
	_, err := c.call(ctx, dev, req)
	return err
}
