package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/hal/sim"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// The daemon under systemd: READY=1 once the device loop runs, WATCHDOG=1
// while it ticks, STOPPING=1 on the way out, to a real NOTIFY_SOCKET.
func TestRunNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1024)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 512)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			select {
			case got <- string(buf[:n]):
			default:
			}
		}
	}()
	defer func() { c.Close(); <-readDone }()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "40000") // pings at most every 20 ms
	t.Setenv("WATCHDOG_PID", "")

	cfg, key := offlineConfig(t)
	hw, err := sim.New(sim.Config{Doors: 1, Shelves: []sim.ShelfConfig{{Shelf: 1, Door: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	exit := make(chan int, 1)
	go func() {
		exit <- runFirmware(ctx, cfg, key, hw.Hardware(), hw.Run, slog.New(slog.DiscardHandler), io.Discard)
	}()
	next := func() string {
		t.Helper()
		select {
		case s := <-got:
			return s
		case code := <-exit:
			t.Fatalf("firmware stopped (%d) before notifying", code)
		case <-time.After(20 * time.Second):
			t.Fatal("no notification")
		}
		return ""
	}
	if s := next(); s != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", s)
	}
	for i := range 3 {
		if s := next(); s != "WATCHDOG=1" {
			t.Fatalf("notification %d: %q, want WATCHDOG=1", i, s)
		}
	}
	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d", code)
	}
	for {
		s := next()
		if s == "STOPPING=1" {
			break
		}
		if s != "WATCHDOG=1" {
			t.Fatalf("unexpected notification %q", s)
		}
	}
}

// A hardware that fails stops the firmware with exit 1, which systemd's
// Restart=on-failure starts again (exit 0 would leave the cabinet dead);
// a config the firmware cannot start on is exit 1 with the reason on
// stderr.
func TestRunExitCodes(t *testing.T) {
	cfg, key := offlineConfig(t)
	hw, err := sim.New(sim.Config{Doors: 1, Shelves: []sim.ShelfConfig{{Shelf: 1, Door: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	failing := func(context.Context) error { return errors.New("spi bus gone") }
	if code := runFirmware(t.Context(), cfg, key, hw.Hardware(), failing, slog.New(slog.DiscardHandler), io.Discard); code != 1 {
		t.Fatalf("hardware failed: exit %d, want 1", code)
	}
	cfg.DataDir = t.TempDir()
	cfg.PlatformKeys = nil
	var stderr strings.Builder
	if code := runFirmware(t.Context(), cfg, key, hw.Hardware(), hw.Run, slog.New(slog.DiscardHandler), &stderr); code != 1 || !strings.Contains(stderr.String(), "platform_keys") {
		t.Fatalf("no platform key: exit %d, stderr %q; want 1 naming platform_keys", code, stderr.String())
	}
}

// offlineConfig is a valid config in a fresh data dir, trusting a fresh
// platform key, with a broker nobody listens on (the cabinet runs
// offline), and a fresh device key.
func offlineConfig(t *testing.T) (config.Config, ed25519.PrivateKey) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.CabinetID = "NM-150102-0007"
	cfg.DataDir = t.TempDir()
	cfg.Broker = "tcp://127.0.0.1:1"
	cfg.PlatformKeys = map[string]string{"plat-1": msg.EncodeKey(pub)}
	return cfg, key
}
