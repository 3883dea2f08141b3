package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/spi"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/hal/board"
	"github.com/bangfu/cabinet/hal/fbdev"
	"github.com/bangfu/cabinet/hal/scale"
)

// benchBoard is a one-door, one-shelf cabinet on a generic host with an
// HDMI screen; pin names are filled in by each test.
const benchBoard = `model: bench
host: generic
doors:
  - number: 1
    lock: {pin: %[1]s/5, active_low: true, fail_safe: false}
    switch: {pin: %[1]s/6, closed_level: low, pull: up}
shelves:
  - {number: 1, door: 1, hx711: {clock: %[1]s/17, data: %[1]s/27}}
display:
  fbdev: {device: /dev/fb0}
`

// boardRig is a data directory with a config, a device key and board files.
type boardRig struct {
	dir, cfgPath, good, nowhere, bad string
	cfg                              config.Config
}

func newBoardRig(t *testing.T) *boardRig {
	t.Helper()
	dir := t.TempDir()
	r := &boardRig{dir: dir, cfgPath: filepath.Join(dir, "cabinet.json")}
	// A broker address where nothing listens: the firmware runs offline.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	broker := "tcp://" + l.Addr().String()
	l.Close()
	data := filepath.Join(dir, "data")
	cfgText := `{"cabinet_id":"NM-150102-0007","data_dir":"` + data + `","broker":"` + broker +
		`","platform_keys":{"plat-1":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}`
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r.good = filepath.Join(dir, "bench.yaml")
	r.nowhere = filepath.Join(dir, "nowhere.yaml")
	r.bad = filepath.Join(dir, "bad.yaml")
	for path, text := range map[string]string{
		r.cfgPath: cfgText,
		r.good:    fmt.Sprintf(benchBoard, "gpiochip0"),
		// A chip no machine has: fails the same way everywhere, touching nothing.
		r.nowhere: fmt.Sprintf(benchBoard, "nosuchchip-bangfu"),
		r.bad:     "model: x\nhost: rpi4\nsoc: rpi4\n",
	} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "device.key"), key.Seed(), 0o600); err != nil {
		t.Fatal(err)
	}
	if r.cfg, err = config.Load(r.cfgPath); err != nil {
		t.Fatal(err)
	}
	return r
}

// recPin is a gpiotest pin that records the levels driven on it; a data
// pin made with ready reads low, as an HX711 with a conversion waiting.
type recPin struct {
	*gpiotest.Pin
	ready bool

	mu   sync.Mutex
	outs []gpio.Level
}

func (p *recPin) Out(l gpio.Level) error {
	p.mu.Lock()
	p.outs = append(p.outs, l)
	p.mu.Unlock()
	return p.Pin.Out(l)
}

func (p *recPin) Read() gpio.Level {
	if p.ready {
		return gpio.Low
	}
	return p.Pin.Read()
}

func (p *recPin) driven() []gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.outs)
}

// fakeHost resolves every pin to a recPin; it has no SPI.
type fakeHost struct {
	mu   sync.Mutex
	pins map[string]*recPin
}

func (h *fakeHost) Pin(name string) (gpio.PinIO, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := &recPin{Pin: &gpiotest.Pin{N: name, EdgesChan: make(chan gpio.Level, 4)}, ready: strings.HasSuffix(name, "/27")}
	h.pins[name] = p
	return p, nil
}

func (h *fakeHost) SPI(name string) (spi.PortCloser, error) {
	return nil, fmt.Errorf("fake host has no SPI port %s", name)
}

func (h *fakeHost) pin(name string) *recPin {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pins[name]
}

// host returns a boardHost on fake pins and a framebuffer in files.
func (h *fakeHost) host(t *testing.T) boardHost {
	t.Helper()
	dir := t.TempDir()
	for f, v := range map[string]string{"virtual_size": "320,240\n", "bits_per_pixel": "16\n", "stride": "640\n"} {
		if err := os.MkdirAll(filepath.Join(dir, "fb0"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "fb0", f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dev := filepath.Join(dir, "fb0.dev")
	if err := os.WriteFile(dev, make([]byte, 640*240), 0o644); err != nil {
		t.Fatal(err)
	}
	return boardHost{
		resolve: func(*board.Board) (board.Resolver, error) { return h, nil },
		opts:    board.BuildOpts{FBOpts: &fbdev.Opts{SysfsRoot: dir, DevPath: dev}},
	}
}

func TestRunBoardCommandLine(t *testing.T) {
	r := newBoardRig(t)
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"board and hal", []string{"run", "--config", r.cfgPath, "--board", r.good, "--hal", "sim"}, 2},
		{"board and sim-socket", []string{"run", "--config", r.cfgPath, "--board", r.good, "--hal", "sim-socket"}, 2},
		{"bad board file", []string{"run", "--config", r.cfgPath, "--board", r.bad}, 1},
		{"missing board file", []string{"run", "--config", r.cfgPath, "--board", filepath.Join(r.dir, "none.yaml")}, 1},
		{"hardware not on this machine", []string{"run", "--config", r.cfgPath, "--board", r.nowhere}, 1},
		{"neither board nor hal", []string{"run", "--config", r.cfgPath}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.args); got != tt.want {
				t.Fatalf("run(%q) = %d, want %d", tt.args, got, tt.want)
			}
		})
	}
}

func TestRunBoardErrors(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r := newBoardRig(t)
	tests := []struct {
		name   string
		board  string
		stderr []string
	}{
		{"bad board file", r.bad, []string{r.bad + `:3: board: unknown key "soc"; did you mean "host"?`}},
		{"hardware not on this machine", r.nowhere, []string{r.nowhere + ":5: door 1 lock: ", "nosuchchip-bangfu/5 not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errOut bytes.Buffer
			got := runBoard(context.Background(), r.cfg, tt.board, realHost, slog.New(slog.DiscardHandler), &errOut)
			if got != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", got, errOut.String())
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errOut.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut.String())
				}
			}
			// Whatever failed, the ledger is not left open.
			led, err := ledger.Open(filepath.Join(r.cfg.DataDir, "ledger.db"))
			if err != nil {
				t.Fatalf("ledger still held: %v", err)
			}
			led.Close()
		})
	}
}

// waitFor polls cond; the deadline only turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

func TestRunBoardRunsFirmware(t *testing.T) {
	tests := []struct {
		name       string
		calibrated bool
	}{
		{"calibrated shelf", true},
		{"uncalibrated shelf", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			r := newBoardRig(t)
			if tt.calibrated {
				led, err := ledger.Open(filepath.Join(r.cfg.DataDir, "ledger.db"))
				if err != nil {
					t.Fatal(err)
				}
				_, err = led.SaveCalibration(1, ledger.StoredCalibration{Calibration: scale.Calibration{Offset: -20000, CountsPerGram: 40}})
				if cerr := led.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			fh := &fakeHost{pins: map[string]*recPin{}}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var errOut bytes.Buffer
			done := make(chan int, 1)
			go func() {
				done <- runBoard(ctx, r.cfg, r.good, fh.host(t), slog.New(slog.DiscardHandler), &errOut)
			}()
			// The firmware's first act releases the lock once more: it runs.
			waitFor(t, "the firmware to release the lock", func() bool {
				p := fh.pin("gpiochip0/5")
				return p != nil && len(p.driven()) >= 2
			})
			clk := fh.pin("gpiochip0/17")
			if tt.calibrated {
				// The stored calibration reached Build: a filter reads the
				// shelf, clocking the HX711.
				waitFor(t, "the shelf's filter to clock the HX711", func() bool {
					return slices.Contains(clk.driven(), gpio.High)
				})
			}
			cancel()
			if got := <-done; got != 0 {
				t.Fatalf("exit %d, want 0; stderr:\n%s", got, errOut.String())
			}
			lock := fh.pin("gpiochip0/5").driven()
			if len(lock) < 3 || slices.Contains(lock, gpio.Low) {
				t.Errorf("lock (active low) driven %v: want only its safe level, high, and a Halt at the end", lock)
			}
			clkOuts := clk.driven()
			if clkOuts[len(clkOuts)-1] != gpio.High {
				t.Errorf("HX711 clock ends at %v: not powered down by Halt", clkOuts[len(clkOuts)-1])
			}
			if !tt.calibrated && len(clkOuts) != 2 {
				t.Errorf("uncalibrated shelf: clock driven %v, want only low at start and high at Halt", clkOuts)
			}
			led, err := ledger.Open(filepath.Join(r.cfg.DataDir, "ledger.db"))
			if err != nil {
				t.Fatalf("ledger still held after exit: %v", err)
			}
			led.Close()
		})
	}
}

func TestRunBoardHaltsWhenFirmwareFails(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r := newBoardRig(t)
	// Another holder of the ledger: the calibrations cannot be read (the
	// run goes on without them) and firmware.New cannot open it.
	led, err := ledger.Open(filepath.Join(r.cfg.DataDir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	fh := &fakeHost{pins: map[string]*recPin{}}
	var errOut bytes.Buffer
	if got := runBoard(context.Background(), r.cfg, r.good, fh.host(t), slog.New(slog.DiscardHandler), &errOut); got != 1 {
		t.Fatalf("exit %d, want 1", got)
	}
	if !strings.Contains(errOut.String(), "ledger") {
		t.Errorf("stderr does not say what failed:\n%s", errOut.String())
	}
	if outs := fh.pin("gpiochip0/5").driven(); len(outs) < 2 || slices.Contains(outs, gpio.Low) {
		t.Errorf("lock driven %v: want its safe level at Build and again at Halt", outs)
	}
	if outs := fh.pin("gpiochip0/17").driven(); outs[len(outs)-1] != gpio.High {
		t.Errorf("HX711 clock driven %v: not powered down", outs)
	}
}
