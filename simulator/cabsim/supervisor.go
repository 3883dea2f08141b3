package cabsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bangfu/cabinet/firmware"
	"github.com/bangfu/cabinet/internal/failpoint"
)

// Firmware modes (-firmware).
const (
	// InProcess runs each cabinet's firmware as goroutines of the
	// simulator. A power cut cancels it; its deferred clean-ups still run
	// and nothing can tear a bbolt write, so only process mode is the
	// real power-cut test.
	InProcess = "inprocess"
	// Process runs each cabinet's firmware as a `cabinet` process on the
	// sim-socket hardware backend; a power cut is kill -9.
	Process = "process"
)

// restartDelay is how long the supervisor waits before starting a
// firmware that stopped by itself other than for a platform `reboot`.
const restartDelay = time.Second

// ErrBadAction is a power or network action the API does not know.
var ErrBadAction = errors.New("cabsim: unknown action")

// ErrNoNetworkControl means the cabinet's broker link is not relayed by
// the simulator (a TLS broker URL), so it cannot be cut.
var ErrNoNetworkControl = errors.New("cabsim: the cabinet's broker link is not relayed (plain tcp:// brokers only)")

// supervise runs the cabinet's firmware while it has power, starting it
// again after it stops by itself, until ctx ends.
func (s *Sim) supervise(ctx context.Context, c *Cabinet) {
	boot := "" // this power-on's boot id (BANGFU_BOOT_ID); a new one after each cut
	for {
		c.mu.Lock()
		for !c.powered {
			ch := c.changed
			c.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-ch:
			}
			c.mu.Lock()
		}
		runCtx, stop := context.WithCancel(ctx)
		stopped := make(chan struct{})
		c.stopRun, c.stopped = stop, stopped
		fps := c.failpoints
		c.mu.Unlock()
		if boot == "" {
			boot = newBootID()
		}

		var res runResult
		if s.opts.Firmware == Process {
			res = s.runProcess(runCtx, c, fps, boot)
		} else {
			res = s.runInProcess(runCtx, c)
		}
		stop()

		c.mu.Lock()
		c.stopRun, c.stopped = nil, nil
		c.dev, c.pid, c.status = nil, 0, nil
		cut := !c.powered
		fired := !cut && res.sigkill && len(fps) > 0
		if fired {
			// The process killed itself at an armed failpoint: finish the
			// power cut it stands for. The points are spent.
			c.powered = false
			c.failpoints = nil
			c.notify()
		}
		c.mu.Unlock()
		if fired {
			c.HW.SetPower(false)
			s.log.Warn("failpoint hit: the power is cut", "cabinet", c.ID, "failpoints", strings.Join(fps, ","))
		}
		close(stopped)
		if ctx.Err() != nil {
			return
		}
		if cut || fired {
			boot = ""
			continue // wait for the power to come back
		}
		if res.err != nil {
			s.log.Error("firmware stopped", "cabinet", c.ID, "err", res.err)
		}
		if !res.reboot {
			select {
			case <-ctx.Done():
				return
			case <-time.After(restartDelay):
			}
		}
	}
}

// runResult is how one run of the firmware ended.
type runResult struct {
	reboot  bool  // the platform asked for it
	sigkill bool  // the process died of SIGKILL
	err     error // anything else worth logging
}

// runInProcess runs the firmware as goroutines until ctx ends or it
// stops.
func (s *Sim) runInProcess(ctx context.Context, c *Cabinet) runResult {
	started := false
	err := firmware.Serve(ctx, firmware.Opts{
		Config: c.cfg, Hardware: c.HW.Hardware(), DeviceKey: c.key,
		Logger:   s.log,
		Dial:     c.dial(),
		OnUnlock: c.metrics.unlock,
		OnSale:   c.metrics.sale,
	}, firmware.Life{
		Running: func(dev *firmware.Device) {
			started = true
			c.mu.Lock()
			c.dev = dev
			c.mu.Unlock()
		},
		Stopped: func() {
			c.mu.Lock()
			c.dev = nil
			c.mu.Unlock()
		},
	})
	switch {
	case !started:
		return runResult{err: fmt.Errorf("firmware would not start: %w", err)}
	case errors.Is(err, firmware.ErrReboot):
		return runResult{reboot: true}
	}
	return runResult{err: err}
}

// dial is the firmware's way to the broker: through the cabinet's network
// switch, or nil (the link's own dialer) when there is none.
func (c *Cabinet) dial() func(context.Context) (net.Conn, error) {
	if c.proxy == nil {
		return nil
	}
	return c.proxy.Dial
}

// ExecWrapperEnv names a command the device binary is started through, for
// a binary built for another architecture than the simulator's machine.
const ExecWrapperEnv = "BANGFU_EXEC_WRAPPER"

// runProcess runs the firmware as a `cabinet` process until it exits or
// ctx ends (which kills it with SIGKILL: a power cut leaves no time for a
// clean shutdown either).
//
// Like systemd for the unit it gets a notification socket, the watchdog
// time and the boot id of this power-on (service.go); a process that
// misses its start or its watchdog is killed and started again.
func (s *Sim) runProcess(ctx context.Context, c *Cabinet, fps []string, boot string) runResult {
	argv := []string{s.cabinetBin, "run", "--config", c.cfgPath, "--hal", "sim-socket", "--sim-socket", c.socket}
	if w := os.Getenv(ExecWrapperEnv); w != "" {
		// A device binary built for another architecture runs under an
		// emulator (make test-arm: qemu-arm-static); the emulator process
		// is the firmware's process, killed and waited for like it.
		argv = append(strings.Fields(w), argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, failpoint.Env+"=") })
	if len(fps) > 0 {
		cmd.Env = append(cmd.Env, failpoint.Env+"="+strings.Join(fps, ","))
	}
	svc, err := listenService(c.socket)
	if err != nil {
		return runResult{err: fmt.Errorf("notification socket: %w", err)}
	}
	defer svc.close()
	cmd.Env = append(cmd.Env, svc.env(boot)...)
	out := &lineLog{log: s.log.With("cabinet", c.ID)}
	cmd.Stdout, cmd.Stderr = out, out
	ownGroup(cmd)
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			return runResult{}
		}
		return runResult{err: fmt.Errorf("start %s: %w", s.cabinetBin, err)}
	}
	c.mu.Lock()
	c.pid = cmd.Process.Pid
	c.mu.Unlock()
	s.log.Info("firmware process started", "cabinet", c.ID, "pid", cmd.Process.Pid, "failpoints", strings.Join(fps, ","))
	stopWatch := make(chan struct{})
	go svc.run(stopWatch, time.Now(), func() {
		s.log.Warn("firmware missed its start or watchdog: killed", "cabinet", c.ID, "pid", cmd.Process.Pid)
		_ = killGroup(cmd)
	})
	err = cmd.Wait()
	close(stopWatch)
	<-svc.done
	out.flush()
	if ctx.Err() != nil {
		return runResult{sigkill: true}
	}
	var exit *exec.ExitError
	switch {
	case svc.killed.Load():
		return runResult{err: errors.New("firmware process killed: no READY=1 or WATCHDOG=1 in time")}
	case killedBySIGKILL(cmd):
		return runResult{sigkill: true, err: errors.New("firmware process killed")}
	case errors.As(err, &exit) && exit.ExitCode() == 3:
		return runResult{reboot: true}
	case err != nil:
		return runResult{err: fmt.Errorf("firmware process: %w", err)}
	}
	return runResult{err: errors.New("firmware process exited")}
}

// onStatus keeps a process's status report, if it comes from the process
// now running (a dead one's last words are ignored).
func (c *Cabinet) onStatus(pid int, raw json.RawMessage) {
	var st firmware.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if pid != 0 && pid == c.pid {
		c.status = &st
	}
}

// notify wakes the supervisor; c.mu is held.
func (c *Cabinet) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Status returns the firmware's own status: read from the firmware in
// process, and in process mode the latest the process reported over its
// hardware socket. ok is false while no firmware runs (no power,
// restarting, not reported yet).
func (c *Cabinet) Status() (st firmware.Status, ok bool) {
	c.mu.Lock()
	dev, rep := c.dev, c.status
	c.mu.Unlock()
	switch {
	case dev != nil:
		return dev.Status(), true
	case rep != nil:
		return *rep, true
	}
	return firmware.Status{}, false
}

// Powered reports whether the cabinet has power.
func (c *Cabinet) Powered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.powered
}

// Power cuts ("cut") or restores ("restore") a cabinet's power. A cut
// returns once the firmware has stopped and the hardware is dark: in
// process mode the process is SIGKILLed (and reaped) first, so it never
// sees the hardware fail; in-process the hardware goes dark first and the
// firmware's context is cancelled. Restoring starts the firmware again
// from its files. Repeating an action does nothing.
func (s *Sim) Power(id, action string) error {
	c, ok := s.byID[id]
	if !ok {
		return ErrNotFound
	}
	switch action {
	case "cut":
		c.cut(s.opts.Firmware == Process)
		s.log.Info("power cut", "cabinet", id)
	case "restore":
		c.mu.Lock()
		if !c.powered {
			c.HW.SetPower(true)
			c.powered = true
			c.notify()
		}
		c.mu.Unlock()
		s.log.Info("power restored", "cabinet", id)
	default:
		return fmt.Errorf("%w: power %q: want cut or restore", ErrBadAction, action)
	}
	return nil
}

func (c *Cabinet) cut(killFirst bool) {
	c.mu.Lock()
	if !c.powered {
		c.mu.Unlock()
		return
	}
	c.powered = false
	c.notify()
	stop, stopped := c.stopRun, c.stopped
	c.mu.Unlock()
	if !killFirst {
		c.HW.SetPower(false)
	}
	if stop != nil {
		stop()
		<-stopped
	}
	c.HW.SetPower(false)
}

// Network cuts ("down") or restores ("up") a cabinet's link to the
// broker: down closes its connections and refuses new ones until up.
func (s *Sim) Network(id, action string) error {
	c, ok := s.byID[id]
	if !ok {
		return ErrNotFound
	}
	var down bool
	switch action {
	case "down":
		down = true
	case "up":
	default:
		return fmt.Errorf("%w: network %q: want down or up", ErrBadAction, action)
	}
	if c.proxy == nil {
		return ErrNoNetworkControl
	}
	c.proxy.SetDown(down)
	s.log.Info("network "+action, "cabinet", id)
	return nil
}

// SetFailpoints arms failpoints (internal/failpoint names) for the next
// start of the cabinet's firmware process. When the process kills itself
// at one, the simulator completes the power cut it stands for (the
// hardware goes dark) and disarms them: restore the power to restart
// without them. Process mode only.
func (s *Sim) SetFailpoints(id string, names ...string) error {
	c, ok := s.byID[id]
	if !ok {
		return ErrNotFound
	}
	if s.opts.Firmware != Process {
		return errors.New("cabsim: failpoints need -firmware=process")
	}
	c.mu.Lock()
	c.failpoints = slices.Clone(names)
	c.mu.Unlock()
	return nil
}

// lineLog writes a child's output to the simulator's log, a line at a
// time, at the level the child's text handler gave it.
type lineLog struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

func (w *lineLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 {
		w.emit(string(w.buf)) // a runaway line: do not hold it all
		w.buf = nil
	}
	return len(p), nil
}

func (w *lineLog) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}

func (w *lineLog) emit(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	lvl := slog.LevelInfo
	switch {
	case strings.Contains(line, " level=DEBUG "):
		lvl = slog.LevelDebug
	case strings.Contains(line, " level=WARN "):
		lvl = slog.LevelWarn
	case strings.Contains(line, " level=ERROR "), strings.HasPrefix(line, "panic:"), strings.HasPrefix(line, "fatal error:"):
		lvl = slog.LevelError
	}
	w.log.Log(context.Background(), lvl, "firmware process", "out", line)
}
