package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bangfu/cabinet/firmware/config"
)

// A fresh board: no config file yet. provision --data-dir --broker writes
// a config that validates, and that loads once the platform's certificate
// is installed.
func TestProvisionFreshWithFlags(t *testing.T) {
	r := newProvRig(t)
	provMust(t, os.Remove(r.cfg))
	data := filepath.Join(r.dir, "state", "bangfu")
	code, stdout, stderr := r.run("--id", provID, "--platform-key", "plat-1="+r.key1, "--config", r.cfg,
		"--data-dir", data, "--broker", "ssl://mqtt.bangfu.example:8883")
	if code != 0 {
		t.Fatalf("provision = %d\n%s", code, stderr)
	}
	out := provDecodeOut(t, stdout)
	f, err := os.Open(r.cfg)
	provMust(t, err)
	cfg, err := config.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("the config provision wrote does not validate: %v", err)
	}
	if cfg.DataDir != data || cfg.Broker != "ssl://mqtt.bangfu.example:8883" || cfg.CabinetID != provID || cfg.TLS.KeyFile != filepath.Join(data, "tls", "device-key.pem") {
		t.Fatalf("config %+v", cfg)
	}
	if strings.Contains(stderr, "does not validate") || strings.Contains(stderr, "would not be valid") {
		t.Errorf("stderr: %s", stderr)
	}
	if _, err := loadKey(filepath.Join(data, "device.key")); err != nil {
		t.Fatalf("device key not in --data-dir: %v", err)
	}
	// The platform signs the CSR; the technician installs its answer.
	blk, _ := pem.Decode([]byte(out.CSRPEM))
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	provMust(t, err)
	ca := newProvTestCA(t)
	provMust(t, os.WriteFile(out.Install.CertFile, ca.sign(t, csr), 0o600))
	provMust(t, os.WriteFile(out.Install.CAFile, ca.pem, 0o600))
	loaded, err := config.Load(r.cfg)
	if err != nil {
		t.Fatalf("Load after installing the certificate: %v", err)
	}
	if err := loaded.Validate(); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cli("check-config", r.cfg); code != 0 {
		t.Fatalf("check-config = %d: %s", code, errs)
	}
}

// A lab broker over plain tcp://: no TLS settings (they would be refused),
// and the config loads at once.
func TestProvisionPlainBroker(t *testing.T) {
	r := newProvRig(t) // its config has tls-less ssl:// broker settings
	r.writeConfig(t, map[string]any{"broker": "ssl://127.0.0.1:8883", "data_dir": r.data,
		"tls": map[string]string{"server_name": "b.example"}})
	code, _, stderr := r.run(r.args("--broker", "tcp://10.0.0.5:1883")...)
	if code != 0 {
		t.Fatalf("provision = %d\n%s", code, stderr)
	}
	cfg, err := config.Load(r.cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Broker != "tcp://10.0.0.5:1883" || cfg.TLS != (config.TLS{}) {
		t.Fatalf("broker %q, tls %+v", cfg.Broker, cfg.TLS)
	}
	if !strings.Contains(stderr, "plain tcp://") {
		t.Errorf("no warning about the plain link:\n%s", stderr)
	}
}

func TestProvisionRefusesInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		doc  map[string]any // nil: no config file
		args []string
		code int
		want string
	}{
		{"no broker anywhere", nil, nil, 1, "--broker"},
		{"bad --broker", nil, []string{"--broker", "http://b.example"}, 2, "--broker"},
		{"--broker without port", nil, []string{"--broker", "ssl://b.example"}, 2, "--broker"},
		{"relative --data-dir", nil, []string{"--broker", "ssl://b:8883", "--data-dir", "data"}, 2, "absolute"},
		{"bad broker in the config", map[string]any{"broker": "ftp://x:1"}, nil, 1, "broker"},
		{"a site setting out of range", map[string]any{"broker": "ssl://b:8883", "heartbeat_s": 0}, nil, 1, "heartbeat_s = 0: want 1..86400"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newProvRig(t)
			if tc.doc == nil {
				provMust(t, os.Remove(r.cfg))
			} else {
				tc.doc["data_dir"] = r.data
				r.writeConfig(t, tc.doc)
			}
			before, _ := os.ReadFile(r.cfg)
			args := append(r.args(), tc.args...)
			if tc.doc == nil && !slices.Contains(tc.args, "--data-dir") {
				args = append(args, "--data-dir", r.data)
			}
			code, stdout, stderr := r.run(args...)
			if code != tc.code || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Fatalf("= %d (want %d), stdout %q, stderr %q (want %q)", code, tc.code, stdout, stderr, tc.want)
			}
			if strings.Contains(stderr, "config: ") {
				t.Errorf("Go package prefix in %q", stderr)
			}
			if _, err := os.Stat(r.data); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused provision created the data dir: %v", err)
			}
			after, _ := os.ReadFile(r.cfg)
			if string(before) != string(after) {
				t.Error("a refused provision changed the config")
			}
		})
	}
}
