package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/hal/sim"
)

func TestCalibrateCommand(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "cabinet.json")
	if err := os.WriteFile(cfg, []byte(`{"cabinet_id":"NM-150102-0007","data_dir":"`+data+
		`","platform_keys":{"plat-1":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	fast := []string{"--hal", "sim", "--config", cfg, "--samples", "10", "--settle", "200ms"}
	args := func(more ...string) []string { return append(append([]string(nil), fast...), more...) }
	tests := []struct {
		name    string
		args    []string
		stdin   string
		want    int
		counter int // the shelf-2 counter stored afterwards; 0: nothing new
		stdout  []string
		stderr  []string
	}{
		{name: "default references", args: args("--shelf", "2"), stdin: "y\ny\ny\n", want: 0, counter: 1,
			stdout: []string{"with 500,1000 g", "Is shelf 2 empty", "totalling 500 g", "totalling 1000 g", "calibration #1 stored"}},
		{name: "again, one reference", args: args("--shelf", "2", "--ref", "2000g"), stdin: "y\ny\n", want: 0, counter: 2,
			stdout: []string{"with 2000 g", "calibration #2 stored"}},
		{name: "technician stops", args: args("--shelf", "2"), stdin: "n\n", want: 1,
			stderr: []string{"calibration refused", "aborted"}},
		{name: "no shelf", args: args(), want: 2},
		{name: "unknown shelf", args: args("--shelf", "9"), want: 2, stderr: []string{"no shelf 9"}},
		{name: "bad reference", args: args("--shelf", "1", "--ref", "heavy"), want: 2},
		{name: "negative reference", args: args("--shelf", "1", "--ref", "-500"), want: 2},
		{name: "left cell named", args: args("--shelf", "2", "--cell", "left", "--ref", "800"), stdin: "y\ny\n", want: 0, counter: 3,
			stdout: []string{"calibrating shelf 2 with 800 g", "in the middle of shelf 2", "shelf 2 calibration #3 stored"}},
		{name: "right cell of a one-cell shelf", args: args("--shelf", "2", "--cell", "right"), want: 2,
			stderr: []string{"shelf 2 has one load cell"}},
		{name: "unknown cell", args: args("--shelf", "2", "--cell", "middle"), want: 2,
			stderr: []string{`--cell "middle": want left or right`}},
		{name: "no hardware", args: []string{"--config", cfg, "--shelf", "1"}, want: 2},
		{name: "missing config", args: []string{"--hal", "sim", "--shelf", "1", "--config", filepath.Join(dir, "none.json")}, want: 1},
	}
	last := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			got := runCalibrate(tt.args, strings.NewReader(tt.stdin), &out, &errOut)
			if got != tt.want {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", got, tt.want, out.String(), errOut.String())
			}
			for _, s := range tt.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errOut.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut.String())
				}
			}
			if _, err := os.Stat(filepath.Join(data, "ledger.db")); err != nil {
				return // refused before the ledger was opened
			}
			led, err := ledger.Open(filepath.Join(data, "ledger.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer led.Close()
			cals, err := led.Calibrations()
			if err != nil {
				t.Fatal(err)
			}
			c := cals[2]
			want := last
			if tt.counter != 0 {
				want = tt.counter
			}
			if c.Counter != want {
				t.Fatalf("shelf 2 counter %d, want %d", c.Counter, want)
			}
			last = c.Counter
			if tt.counter != 0 {
				if k := c.Calibration.CountsPerGram; math.Abs(k/sim.DefaultCalibration.CountsPerGram-1) > 0.003 {
					t.Fatalf("stored %.4f counts per gram, the sim has %v", k, sim.DefaultCalibration.CountsPerGram)
				}
			}
			if len(cals) > 1 {
				t.Fatalf("calibrations stored for shelves %v", cals)
			}
		})
	}

	t.Run("ledger held by the running firmware", func(t *testing.T) {
		led, err := ledger.Open(filepath.Join(data, "ledger.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer led.Close()
		var out, errOut bytes.Buffer
		if got := runCalibrate(args("--shelf", "1"), strings.NewReader("y\ny\ny\n"), &out, &errOut); got != 1 {
			t.Fatalf("exit %d with the ledger held\n%s", got, errOut.String())
		}
		if !strings.Contains(errOut.String(), "stop it before calibrating") {
			t.Fatalf("stderr: %s", errOut.String())
		}
		if strings.Contains(out.String(), "empty") {
			t.Fatal("the technician was asked to act before the ledger was known to be free")
		}
	})
}
