package main

import (
	"bytes"
	"crypto/ed25519"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// cli runs the command line and returns its status, stdout and stderr.
func cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runWith(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"-help"}} {
		code, out, errs := cli(args...)
		if code != 0 || errs != "" {
			t.Fatalf("%q = %d, stderr %q", args, code, errs)
		}
		for _, c := range commands {
			if !strings.Contains(out, "  "+c.name+" ") || !strings.Contains(out, c.summary) {
				t.Errorf("%q does not list %s:\n%s", args, c.name, out)
			}
		}
	}
	for _, c := range commands {
		for _, args := range [][]string{{"help", c.name}, {c.name, "-h"}, {c.name, "--help"}, {c.name, "-help"}} {
			code, out, errs := cli(args...)
			if code != 0 || errs != "" {
				t.Fatalf("%q = %d, stderr %q", args, code, errs)
			}
			if !strings.HasPrefix(out, "cabinet "+c.name+": ") || !strings.Contains(out, "usage:") || !strings.Contains(out, c.text) {
				t.Errorf("%q:\n%s", args, out)
			}
		}
	}
	// Help comes before anything the subcommand would do.
	if code, _, _ := cli("keygen", "--out", filepath.Join(t.TempDir(), "k"), "-h"); code != 0 {
		t.Fatalf("keygen … -h = %d", code)
	}
	if code, _, _ := cli("check-config", "--", "-h"); code != 1 {
		t.Fatalf("check-config -- -h (a file named -h) = %d, want 1", code)
	}
}

func TestUnknownSubcommand(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"help", "frobnicate"}, {"help", "run", "extra"}, {"--frob"}} {
		code, out, errs := cli(args...)
		if code != 2 || out != "" || !strings.Contains(errs, "unknown subcommand") || !strings.Contains(errs, "cabinet help") {
			t.Errorf("%q = %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	if code, out, errs := cli(); code != 2 || out != "" || !strings.Contains(errs, "usage:") {
		t.Errorf("no arguments = %d, stdout %q, stderr %q", code, out, errs)
	}
}

// Every flag a subcommand's flag set defines is explained in its help.
func TestHelpNamesEveryFlag(t *testing.T) {
	flagLine := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)
	defaults := map[string]func(w io.Writer){
		"run":             func(w io.Writer) { runDaemon([]string{"-h"}, w) },
		"provision":       func(w io.Writer) { runProvision([]string{"-h"}, io.Discard, w) },
		"keygen":          func(w io.Writer) { runKeygen([]string{"-h"}, io.Discard, w) },
		"release-sign":    func(w io.Writer) { runReleaseSign([]string{"-h"}, io.Discard, w) },
		"diag":            func(w io.Writer) { runDiag([]string{"-h"}, strings.NewReader(""), io.Discard, w) },
		"calibrate":       func(w io.Writer) { runCalibrate([]string{"-h"}, strings.NewReader(""), io.Discard, w) },
		"storage":         func(w io.Writer) { runStorage([]string{"status", "-h"}, io.Discard, w) },
		"check-planogram": func(w io.Writer) { runCheckPlanogram([]string{"-h"}, io.Discard, w) },
	}
	for name, printDefaults := range defaults {
		c, ok := lookupCommand(name)
		if !ok {
			t.Fatalf("no help for %s", name)
		}
		var b bytes.Buffer
		printDefaults(&b)
		flags := flagLine.FindAllStringSubmatch(b.String(), -1)
		if len(flags) == 0 {
			t.Fatalf("%s -h printed no flags:\n%s", name, b.String())
		}
		for _, f := range flags {
			dash := "--"
			if len(f[1]) == 1 {
				dash = "-"
			}
			if !strings.Contains(c.text, dash+f[1]+" ") {
				t.Errorf("cabinet help %s does not explain %s%s", name, dash, f[1])
			}
		}
	}
}

func TestKeygenPrintsPublicKey(t *testing.T) {
	out := filepath.Join(t.TempDir(), "device.key")
	code, stdout, errs := cli("keygen", "--out", out)
	if code != 0 {
		t.Fatalf("keygen = %d: %s", code, errs)
	}
	key, err := loadKey(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(stdout), msg.EncodeKey(key.Public().(ed25519.PublicKey)); got != want {
		t.Fatalf("keygen printed %q, want the public key %q", got, want)
	}
	before, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ := cli("keygen", "--out", out); code != 1 || stdout != "" {
		t.Fatalf("keygen over a key = %d, %q", code, stdout)
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Fatal("keygen replaced a key")
	}
	if code, _, _ := cli("keygen"); code != 2 {
		t.Fatalf("keygen without --out = %d", code)
	}
}

// check-config names the setting and what it must be, without the Go
// packages' prefixes.
func TestCheckConfigMessages(t *testing.T) {
	dir := t.TempDir()
	const key = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	tests := []struct {
		name, body string
		want       []string
	}{
		{"unknown key", `{"cabinet_id":"NM-1","typo_key":1}`, []string{`"typo_key" is not a setting`, "docs/config.md"}},
		{"wrong type", `{"heartbeat_s":"30"}`, []string{"heartbeat_s: want a whole number, not a JSON string"}},
		{"nested wrong type", `{"tls":{"ca_file":1}}`, []string{"tls.ca_file: want a string"}},
		{"duplicate", `{"cabinet_id":"A","cabinet_id":"B"}`, []string{`"cabinet_id" is given twice`}},
		{"syntax", `{"cabinet_id":`, []string{"not a valid config file"}},
		{"not json", `x`, []string{"not valid JSON at byte 1"}},
		{"several", `{"cabinet_id":"","heartbeat_s":0,"platform_keys":{"p":"short"},"data_dir":"` + dir + `"}`, []string{
			"3 problems:", `  cabinet_id "": letters, digits and '-'`, "  heartbeat_s = 0: want 1..86400",
			`  platform_keys["p"]: bad public key "short": want an Ed25519 public key`,
		}},
		{"tls on tcp", `{"cabinet_id":"A","platform_keys":{"p":"` + key + `"},"data_dir":"` + dir + `","tls":{"ca_file":"a","cert_file":"b","key_file":"c"}}`,
			[]string{`tls: set, but broker "tcp://127.0.0.1:1883" is plain tcp://`}},
		{"missing TLS file", `{"cabinet_id":"A","broker":"ssl://b:8883","platform_keys":{"p":"` + key + `"},"data_dir":"` + dir + `","tls":{"ca_file":"` + dir + `/none.pem","cert_file":"b","key_file":"c"}}`,
			[]string{"tls.ca_file: open " + dir + "/none.pem: no such file or directory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".json")
			if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errs := cli("check-config", p)
			if code != 1 || out != "" {
				t.Fatalf("check-config = %d, stdout %q", code, out)
			}
			if !strings.HasPrefix(errs, p+": ") {
				t.Errorf("does not start with the file: %q", errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			rest := strings.TrimPrefix(errs, p+": ")
			for _, prefix := range []string{"config: ", "msg: ", "json: ", "telemetry: ", "Go struct", "tls: tls"} {
				if strings.Contains(rest, prefix) {
					t.Errorf("stderr has %q:\n%s", prefix, errs)
				}
			}
		})
	}
	code, _, errs := cli("check-config", filepath.Join(dir, "none.json"))
	if code != 1 || !strings.Contains(errs, "none.json: cannot read the file: no such file or directory") {
		t.Errorf("missing file = %d: %q", code, errs)
	}
	if code, _, _ := cli("check-config"); code != 2 {
		t.Errorf("check-config without a file = %d", code)
	}
}
