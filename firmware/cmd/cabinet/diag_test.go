package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/bangfu/cabinet/hal/board"
)

func TestDiagCommand(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	fridge := filepath.Join(dir, "rpi4-fridge-2door.yaml")
	b, err := board.LoadShipped("rpi4-fridge-2door")
	if err != nil {
		t.Fatal(err)
	}
	text, err := b.Format()
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	// Hardware no machine has: Build fails the same way everywhere.
	nowhere := filepath.Join(dir, "nowhere.yaml")
	cfg := filepath.Join(dir, "cabinet.json")
	for path, data := range map[string][]byte{
		fridge:  text,
		bad:     []byte("model: x\nhost: rpi4\nsoc: rpi4\n"),
		nowhere: []byte(fmt.Sprintf(benchBoard, "nosuchchip-bangfu")),
		cfg: []byte(`{"cabinet_id":"NM-150102-0007","data_dir":"` + filepath.Join(dir, "data") +
			`","platform_keys":{"plat-1":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}`),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		args      []string
		stdin     string
		want      int
		stdout    []string
		stderr    []string
		notStdout []string
	}{
		{name: "healthy sim, --yes", args: []string{"--hal", "sim", "--yes", "--sample", "500ms"}, want: 0,
			stdout: []string{"door 1 lock", "shelf 4", "thermometer", "yes (--yes)", "0 failed"}},
		{name: "technician answers", args: []string{"--hal", "sim", "--sample", "500ms"}, stdin: "y\ny\n", want: 0,
			stdout: []string{"[y/n]", "0 failed"}, notStdout: []string{"--yes"}},
		{name: "technician sees no QR", args: []string{"--hal", "sim", "--sample", "500ms"}, stdin: "n\ny\n", want: 1,
			stdout: []string{"1 failed"}, stderr: []string{"1 checks failed"}},
		{name: "input ends before the questions", args: []string{"--hal", "sim", "--sample", "500ms"}, want: 1,
			stderr: []string{"diag stopped", "no answer"}},
		{name: "board hardware not on this machine", args: []string{"--board", nowhere, "--config", cfg}, want: 1,
			stderr: []string{nowhere + ":5: door 1 lock: ", "nosuchchip-bangfu/5 not found"}},
		{name: "named config missing", args: []string{"--board", nowhere, "--config", filepath.Join(dir, "none.json")}, want: 1,
			stderr: []string{"none.json"}},
		{name: "bad board file", args: []string{"--board", bad, "--config", cfg}, want: 1,
			stderr: []string{bad + `:3: board: unknown key "soc"; did you mean "host"?`}},
		{name: "no hardware named", args: []string{"--yes"}, want: 2, stderr: []string{"--board FILE or --hal sim"}},
		{name: "both named", args: []string{"--board", fridge, "--hal", "sim"}, want: 2},
		{name: "unknown hal", args: []string{"--hal", "gpio"}, want: 2, stderr: []string{`unknown --hal "gpio"`}},
		{name: "bad sample", args: []string{"--hal", "sim", "--sample", "0s"}, want: 2},
		{name: "unknown flag", args: []string{"--hal", "sim", "--fast"}, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			got := runDiag(tt.args, strings.NewReader(tt.stdin), &out, &errOut)
			if got != tt.want {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", got, tt.want, out.String(), errOut.String())
			}
			for _, s := range tt.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range tt.notStdout {
				if strings.Contains(out.String(), s) {
					t.Errorf("stdout has %q:\n%s", s, out.String())
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errOut.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut.String())
				}
			}
		})
	}
}
