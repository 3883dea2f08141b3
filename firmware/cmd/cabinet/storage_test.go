package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/ledger"
)

func TestStorageCommand(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cabinet.json")
	if err := os.WriteFile(cfg, []byte(`{"cabinet_id":"NM-150102-0007","data_dir":"`+data+
		`","platform_keys":{"plat-1":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A corrupt ledger, as the firmware finds it at start-up.
	path := filepath.Join(data, "ledger.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte{0xAB}, 16384), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := ledger.OpenChecked(path, ledger.Opts{Now: func() time.Time { return time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()

	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runStorage(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, _ := run("wipe", "--config", cfg); code != 2 {
		t.Fatalf("unknown action: exit %d", code)
	}
	code, out, errs := run("status", "--config", cfg)
	if code != 0 || !strings.Contains(out, "corrupt") || !strings.Contains(out, "ledger.db.corrupt-20261126T090000Z") {
		t.Fatalf("status: %d %q %q", code, out, errs)
	}
	// The firmware holds the ledger: refused, nothing cleared.
	held, err := ledger.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run("clear", "--config", cfg); code != 1 || !strings.Contains(errs, "stop the firmware") {
		t.Fatalf("clear while held: %d %q", code, errs)
	}
	held.Close()
	if code, out, _ := run("clear", "--config", cfg); code != 0 || !strings.Contains(out, "cleared") {
		t.Fatalf("clear: %d %q", code, out)
	}
	if code, out, _ := run("status", "--config", cfg); code != 0 || !strings.Contains(out, "no storage fault") {
		t.Fatalf("status after clear: %d %q", code, out)
	}
	if _, err := os.Stat(path + ".corrupt-20261126T090000Z"); err != nil {
		t.Fatalf("the old file must stay for recovery: %v", err)
	}
}
