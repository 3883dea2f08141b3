package main

import (
	"encoding/json"
	"github.com/bangfu/cabinet/telemetry/msg"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bangfu/cabinet/firmware"
	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/ota"
)

// A torn state.json: set aside, the factory binary runs, and the outcome
// to report says why.
func TestLaunchCorruptState(t *testing.T) {
	t.Setenv(ota.SlotEnv, "")
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	path := ota.StatePath(cfg.DataDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"current":{"slot":"b","ver`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, exit := launch(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); exit {
		t.Fatal("launch exec'd or exited on a torn state")
	}
	st, err := ota.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Current.Slot != ota.Factory || st.Current.Version != firmware.FW || len(st.Pending) != 1 ||
		!strings.Contains(st.Pending[0].Reason, "state.json unreadable") {
		t.Fatalf("state after a torn file: %+v", st)
	}
	matches, _ := filepath.Glob(path + ".bad-*")
	if len(matches) != 1 {
		t.Fatalf("the torn file was not set aside: %v", matches)
	}
}

// release-sign prints a bundle the cabinet's check accepts.
func TestReleaseSign(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "release.key")
	code, pub, _ := cli("keygen", "--out", key)
	if code != 0 {
		t.Fatal("keygen failed")
	}
	bin := filepath.Join(dir, "cabinet")
	if err := os.WriteFile(bin, []byte("a build"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli("release-sign", "--key", key, "--kid", "rel-1", "--version", "9.0.0", "--url", "http://mirror/x", bin)
	if code != 0 {
		t.Fatalf("release-sign = %d: %s", code, errs)
	}
	var bundle msg.Bundle
	if err := json.Unmarshal([]byte(out), &bundle); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{"rel-1": strings.TrimSpace(pub)}
	if err := ota.Check(bundle, keys, firmware.FW, ota.State{}); err != nil {
		t.Fatalf("the signed bundle does not check: %v\n%s", err, out)
	}
}
