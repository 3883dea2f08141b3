package ds18b20

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/internal/clock"
)

const id = "28-0316a2794f3b"

// slave is a w1_slave file as the kernel writes it.
func slave(crc string, milli string) string {
	return "72 01 4b 46 7f ff 0e 10 57 : crc=57 " + crc + "\n" +
		"72 01 4b 46 7f ff 0e 10 57 t=" + milli + "\n"
}

// sensor writes a fake sysfs directory for id under dir with the given
// files (name → content) and returns the sensor's directory.
func sensor(t *testing.T, dir, id string, files map[string]string) string {
	t.Helper()
	sd := filepath.Join(dir, id)
	if err := os.MkdirAll(sd, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(sd, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return sd
}

func TestCelsius(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // nil: no sensor directory at all
		want  float64
	}{
		{"temperature attribute", map[string]string{"temperature": "23125\n"}, 23.125},
		{"w1_slave", map[string]string{"w1_slave": slave("YES", "23125")}, 23.125},
		{"below zero", map[string]string{"w1_slave": slave("YES", "-10062")}, -10.062},
		{"temperature preferred over w1_slave", map[string]string{"temperature": "4500", "w1_slave": slave("YES", "30000")}, 4.5},
		{"range low end", map[string]string{"temperature": "-55000"}, -55},
		{"range high end", map[string]string{"temperature": "125000"}, 125},
		{"85 °C is fine when not exactly the reset value", map[string]string{"temperature": "85062"}, 85.062},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			sensor(t, dir, id, tt.files)
			d, err := New(id, &Opts{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Celsius(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Celsius() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCelsiusFaults(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // nil: no sensor directory
		want  error
	}{
		{"unplugged", nil, ErrNotFound},
		{"directory without files", map[string]string{}, ErrNotFound},
		{"CRC NO", map[string]string{"w1_slave": "ff ff ff ff ff ff ff ff ff : crc=c9 NO\nff ff ff ff ff ff ff ff ff t=-62\n"}, ErrCRC},
		{"power-on value, temperature", map[string]string{"temperature": "85000\n"}, ErrPowerOnReset},
		{"power-on value, w1_slave", map[string]string{"w1_slave": slave("YES", "85000")}, ErrPowerOnReset},
		{"-127 °C", map[string]string{"temperature": "-127000"}, ErrOutOfRange},
		{"below range", map[string]string{"w1_slave": slave("YES", "-55001")}, ErrOutOfRange},
		{"above range", map[string]string{"temperature": "125001"}, ErrOutOfRange},
		{"garbage temperature", map[string]string{"temperature": "hello\n"}, ErrGarbage},
		{"empty temperature", map[string]string{"temperature": ""}, ErrGarbage},
		{"one line", map[string]string{"w1_slave": "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"}, ErrGarbage},
		{"no t=", map[string]string{"w1_slave": "72 01 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57\n"}, ErrGarbage},
		{"bad t=", map[string]string{"w1_slave": slave("YES", "2x")}, ErrGarbage},
		{"no verdict", map[string]string{"w1_slave": slave("MAYBE", "23125")}, ErrGarbage},
		{"no crc=", map[string]string{"w1_slave": "72 01 4b YES\n72 01 4b t=23125\n"}, ErrGarbage},
		{"all-zero scratchpad", map[string]string{"w1_slave": "00 00 00 00 00 00 00 00 00 : crc=00 YES\n00 00 00 00 00 00 00 00 00 t=0\n"}, ErrGarbage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.files != nil {
				sensor(t, dir, id, tt.files)
			}
			d, err := New(id, &Opts{Dir: dir, Retries: -1})
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Celsius(t.Context())
			if !errors.Is(err, tt.want) || !errors.Is(err, hal.ErrFault) {
				t.Fatalf("Celsius() = %v, %v; want %v and hal.ErrFault", got, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "ds18b20: "+id+":") {
				t.Fatalf("error %q lacks the package and sensor prefix", err)
			}
		})
	}
}

// A read error other than a missing file (the kernel fails temperature on a
// bad CRC) is a fault too.
func TestCelsiusReadError(t *testing.T) {
	dir := t.TempDir()
	sd := sensor(t, dir, id, nil)
	// A directory where the file should be makes the read fail.
	if err := os.Mkdir(filepath.Join(sd, "temperature"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := New(id, &Opts{Dir: dir, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Celsius(t.Context()); !errors.Is(err, hal.ErrFault) || errors.Is(err, ErrNotFound) {
		t.Fatalf("Celsius() = %v, want hal.ErrFault and not ErrNotFound", err)
	}
}

// Sensors in sysfs are symlinks into the bus's device tree.
func TestCelsiusThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	target := sensor(t, filepath.Join(dir, "w1_bus_master1"), id, map[string]string{"w1_slave": slave("YES", "7250")})
	devices := filepath.Join(dir, "devices")
	if err := os.Mkdir(devices, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(devices, id)); err != nil {
		t.Fatal(err)
	}
	d, err := New(id, &Opts{Dir: devices})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Celsius(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got != 7.25 {
		t.Fatalf("Celsius() = %v, want 7.25", got)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		retries   int
		reads     []string // w1_slave for each attempt; the last one stays
		wantReads int
		want      float64
		wantErr   error
	}{
		{"power-on value then good", 2, []string{slave("YES", "85000"), slave("YES", "21500")}, 2, 21.5, nil},
		{"CRC errors then good", 2, []string{slave("NO", "21500"), slave("NO", "21500"), slave("YES", "21000")}, 3, 21, nil},
		{"power-on value stays", 2, []string{slave("YES", "85000")}, 3, 0, ErrPowerOnReset},
		{"CRC errors outlast the retries", 1, []string{slave("NO", "1"), slave("NO", "1"), slave("YES", "21000")}, 2, 0, ErrCRC},
		{"default retries", 0, []string{slave("NO", "1")}, 3, 0, ErrCRC},
		{"no retries", -1, []string{slave("NO", "1"), slave("YES", "21000")}, 1, 0, ErrCRC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			sd := sensor(t, dir, id, map[string]string{"w1_slave": tt.reads[0]})
			d, err := New(id, &Opts{Dir: dir, Retries: tt.retries, RetryDelay: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			reads := 1
			d.wait = func(ctx context.Context, delay time.Duration) error {
				if delay != time.Hour {
					t.Errorf("retry delay %v, want the configured hour", delay)
				}
				// The next read sees the sensor's next answer.
				if reads < len(tt.reads) {
					if err := os.WriteFile(filepath.Join(sd, "w1_slave"), []byte(tt.reads[reads]), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				reads++
				return nil
			}
			got, err := d.Celsius(t.Context())
			if reads != tt.wantReads {
				t.Fatalf("%d reads, want %d", reads, tt.wantReads)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, hal.ErrFault) {
					t.Fatalf("Celsius() = %v, %v; want %v and hal.ErrFault", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Celsius() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRetryCancelled(t *testing.T) {
	dir := t.TempDir()
	sensor(t, dir, id, map[string]string{"w1_slave": slave("NO", "1")})
	d, err := New(id, &Opts{Dir: dir, RetryDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{})
	d.wait = func(ctx context.Context, delay time.Duration) error {
		close(waiting)
		return clock.Sleep(ctx, delay) // the real, context-aware pause
	}
	ctx, cancel := context.WithCancel(t.Context())
	res := make(chan error, 1)
	go func() {
		_, err := d.Celsius(ctx)
		res <- err
	}()
	<-waiting
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Celsius() = %v, want context.Canceled", err)
		}
		// The read that failed is still named.
		if !strings.Contains(err.Error(), "CRC") {
			t.Fatalf("error %q does not mention the failed read", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Celsius ignored the cancelled context during its retry pause")
	}

	// An already cancelled context reads nothing.
	if _, err := d.Celsius(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Celsius() with a cancelled context = %v", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		id     string
		wantID string // "" when New must fail
	}{
		{"28-0316a2794f3b", "28-0316a2794f3b"},
		{"28-0316A2794F3B", "28-0316a2794f3b"},
		{" 28-0316a2794f3b\n", "28-0316a2794f3b"},
		{"", ""},
		{"28-", ""},
		{"28-0316a2794f3", ""},
		{"28-0316a2794f3b0", ""},
		{"28-0316a2794f3g", ""},
		{"10-0316a2794f3b", ""}, // DS18S20, another family
		{"280316a2794f3b", ""},
		{"../28-0316a2794f3b", ""},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			d, err := New(tt.id, nil)
			if tt.wantID == "" {
				if err == nil {
					t.Fatalf("New(%q) succeeded", tt.id)
				}
				if !strings.HasPrefix(err.Error(), "ds18b20: ") {
					t.Fatalf("error %q lacks the package prefix", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.ID() != tt.wantID {
				t.Fatalf("ID() = %q, want %q", d.ID(), tt.wantID)
			}
			if d.String() != "ds18b20 "+tt.wantID {
				t.Fatalf("String() = %q", d.String())
			}
			if want := filepath.Join(DefaultOpts.Dir, tt.wantID); d.dir != want {
				t.Fatalf("reads %q, want %q", d.dir, want)
			}
		})
	}
	if _, err := New(id, &Opts{RetryDelay: -1}); err == nil {
		t.Fatal("New with a negative retry delay succeeded")
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"28-0316a2794f3b", "28-00000a1b2c3d", "w1_bus_master1", "10-000802b4ba0e", "28-short"} {
		sensor(t, dir, name, nil)
	}
	if err := os.Symlink(filepath.Join(dir, "28-0316a2794f3b"), filepath.Join(dir, "28-ffffffffffff")); err != nil {
		t.Fatal(err)
	}
	got, err := Find(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"28-00000a1b2c3d", "28-0316a2794f3b", "28-ffffffffffff"}; !slices.Equal(got, want) {
		t.Fatalf("Find() = %v, want %v", got, want)
	}

	got, err = Find(t.TempDir())
	if err != nil || len(got) != 0 {
		t.Fatalf("Find(empty) = %v, %v; want none", got, err)
	}
	if _, err := Find(filepath.Join(dir, "missing")); err == nil || !strings.HasPrefix(err.Error(), "ds18b20: ") {
		t.Fatalf("Find(missing) = %v, want a ds18b20 error", err)
	}
}
