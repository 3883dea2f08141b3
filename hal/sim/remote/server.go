package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/scale"
	"github.com/bangfu/cabinet/hal/sim"
)

// ServerOpts configures a Server. The zero value serves a cabinet built
// with sim's defaults.
type ServerOpts struct {
	// SampleRate is the HX711 rate the cabinet was built with
	// (sim.Config.SampleRate); default 10. A scale read blocks for one
	// period of it.
	SampleRate float64
	// Cal is each shelf's calibration as built (sim.ShelfConfig.Cal);
	// shelves not in it use sim.DefaultCalibration.
	Cal map[int]scale.Calibration
	// Name is reported in the layout; default "sim".
	Name string
	// OnStatus receives the device's status reports with the process id
	// its hello gave. It runs on the connection's goroutine: keep it quick.
	OnStatus func(pid int, status json.RawMessage)
	Logger   *slog.Logger
}

// Server exposes one virtual cabinet's devices.
type Server struct {
	c      *sim.Cabinet
	hw     hal.Cabinet
	layout Layout
	period time.Duration
	o      ServerOpts
	log    *slog.Logger
}

// NewServer returns a server for c. o may be nil.
func NewServer(c *sim.Cabinet, o *ServerOpts) (*Server, error) {
	if c == nil {
		return nil, errors.New("remote: nil cabinet")
	}
	var opts ServerOpts
	if o != nil {
		opts = *o
	}
	if opts.SampleRate < 0 {
		return nil, fmt.Errorf("remote: sample rate %v", opts.SampleRate)
	}
	if opts.SampleRate == 0 {
		opts.SampleRate = 10
	}
	if opts.Name == "" {
		opts.Name = "sim"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	hw := c.Hardware()
	l := Layout{Name: opts.Name, SampleRate: opts.SampleRate, Thermo: hw.Thermometer != nil, Indicator: hw.Indicator != nil}
	for _, d := range hw.Doors {
		l.Doors = append(l.Doors, d.Number)
	}
	for _, sh := range hw.Shelves {
		cal, ok := opts.Cal[sh.Number]
		if !ok {
			cal = sim.DefaultCalibration
		}
		if err := cal.Validate(); err != nil {
			return nil, fmt.Errorf("remote: shelf %d: %w", sh.Number, err)
		}
		l.Shelves = append(l.Shelves, ShelfLayout{Shelf: sh.Number, Door: sh.Door, Cal: cal, TwoCell: sh.Right != nil})
	}
	return &Server{
		c: c, hw: hw, layout: l, o: opts, log: opts.Logger,
		period: time.Duration(float64(time.Second) / opts.SampleRate),
	}, nil
}

// Layout is what the server's hello answers.
func (s *Server) Layout() Layout { return s.layout }

// Serve exposes c with default options (see Server.Serve).
func Serve(ctx context.Context, ln net.Listener, c *sim.Cabinet) error {
	s, err := NewServer(c, nil)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve answers connections on ln until ctx ends, then closes ln and every
// connection, waits for their goroutines and returns nil. An accept error
// other than the listener closing is returned.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				cancel()
				return nil
			}
			cancel()
			return fmt.Errorf("remote: accept: %w", err)
		}
		wg.Go(func() { s.serveConn(ctx, conn) })
	}
}

// serveConn answers one connection until it breaks or ctx ends.
func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	var calls sync.WaitGroup
	defer func() {
		cancel()
		conn.Close()
		calls.Wait()
	}()
	context.AfterFunc(ctx, func() { conn.Close() }) // unblocks the reader below
	var wmu sync.Mutex
	enc := json.NewEncoder(conn)
	write := func(r response) {
		wmu.Lock()
		defer wmu.Unlock()
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := enc.Encode(r); err != nil {
			cancel() // the peer is gone or stuck: drop it
		}
	}
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 0, 4096), maxLineBytes)
	pid := 0
	greeted := false
	// The connection is one reader of the scales: its own pacers, and its
	// own sampler pairing a two-cell shelf's total and right cell.
	cs := &connState{pacers: map[int]*sim.Pacer{}, right: map[int]*sim.Pacer{}, sampler: s.c.NewSampler()}
	for _, sh := range s.layout.Shelves {
		cs.pacers[sh.Shelf] = &sim.Pacer{}
		if sh.TwoCell {
			cs.right[sh.Shelf] = &sim.Pacer{}
		}
	}
	slots := make(chan struct{}, maxInFlight)
	for sc.Scan() {
		var req request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			s.log.Warn("remote: bad request; dropping the connection", "err", err)
			return
		}
		if !greeted {
			if req.Op != opHello {
				write(response{ID: req.ID, Err: "hello first", ErrKind: errKindBadRequest})
				return
			}
			if req.Version != protocolVersion {
				write(response{ID: req.ID, Err: fmt.Sprintf("protocol version %d, server speaks %d", req.Version, protocolVersion), ErrKind: errKindBadRequest})
				return
			}
			greeted, pid = true, req.PID
			l := s.layout
			write(response{ID: req.ID, Layout: &l})
			continue
		}
		if req.Op == opStatus {
			// In order, on this goroutine: a newer report never loses to
			// an older one.
			if s.o.OnStatus != nil {
				s.o.OnStatus(pid, req.Status)
			}
			write(response{ID: req.ID})
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		calls.Go(func() {
			defer func() { <-slots }()
			write(s.call(ctx, req, cs))
		})
	}
}

// connState is what one connection's scale reads share.
type connState struct {
	pacers  map[int]*sim.Pacer // each shelf's scale
	right   map[int]*sim.Pacer // each two-cell shelf's right cell
	sampler *sim.Sampler
}

// call performs one device call.
func (s *Server) call(ctx context.Context, req request, cs *connState) response {
	resp := response{ID: req.ID}
	fail := func(err error) response {
		resp.Err, resp.ErrKind = err.Error(), kindOf(err)
		if ctx.Err() != nil {
			resp.ErrKind = errKindClosed
		}
		return resp
	}
	door := func() (hal.Door, error) {
		for _, d := range s.hw.Doors {
			if d.Number == req.Door {
				return d, nil
			}
		}
		return hal.Door{}, fmt.Errorf("remote: no door %d", req.Door)
	}
	var err error
	switch req.Op {
	case opLockEnergise, opLockRelease, opLockLocked, opLockHalt, opDoorClosed, opDoorOpened:
		d, derr := door()
		if derr != nil {
			resp.ErrKind = errKindBadRequest
			resp.Err = derr.Error()
			return resp
		}
		switch req.Op {
		case opLockEnergise:
			err = d.Lock.Energise(ctx)
		case opLockRelease:
			err = d.Lock.Release(ctx)
		case opLockLocked:
			resp.Bool, err = d.Lock.Locked(ctx)
		case opLockHalt:
			err = d.Lock.Halt()
		case opDoorClosed:
			resp.Bool, err = d.Sensor.Closed(ctx)
		case opDoorOpened:
			if l, ok := d.Sensor.(hal.DoorLatch); ok {
				resp.Bool, err = l.Opened(ctx)
			}
		}
	case opScaleRead, opScaleReadRight:
		pacers, sample, what := cs.pacers, cs.sampler.Sample, "shelf"
		if req.Op == opScaleReadRight {
			pacers, sample, what = cs.right, cs.sampler.SampleRight, "two-cell shelf"
		}
		p, ok := pacers[req.Shelf]
		if !ok {
			resp.ErrKind = errKindBadRequest
			resp.Err = fmt.Sprintf("remote: no %s %d", what, req.Shelf)
			return resp
		}
		if err := p.Wait(ctx, s.period, time.Now, time.After); err != nil { // one sample a period per connection, as the chip's data-ready line would
			return fail(err)
		}
		resp.Raw, err = sample(req.Shelf)
	case opDisplayShow:
		if req.Screen == nil {
			resp.ErrKind = errKindBadRequest
			resp.Err = "remote: show without a screen"
			return resp
		}
		err = s.hw.Display.Show(ctx, *req.Screen)
	case opDisplayHalt:
		err = s.hw.Display.Halt()
	case opThermoCelsius:
		if s.hw.Thermometer == nil {
			return fail(errors.New("remote: no thermometer"))
		}
		resp.Celsius, err = s.hw.Thermometer.Celsius(ctx)
	case opIndicatorSet, opIndicatorHalt:
		if s.hw.Indicator == nil {
			return fail(errors.New("remote: no indicator"))
		}
		if req.Op == opIndicatorSet {
			err = s.hw.Indicator.Set(ctx, req.Signal)
		} else {
			err = s.hw.Indicator.Halt()
		}
	default:
		resp.ErrKind = errKindBadRequest
		resp.Err = fmt.Sprintf("remote: unknown operation %q", req.Op)
		return resp
	}
	if err != nil {
		return fail(err)
	}
	return resp
}
