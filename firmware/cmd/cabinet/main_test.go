package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSubcommands(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(good, []byte(`{"cabinet_id":"NM-150102-0007","data_dir":"`+dir+`","platform_keys":{"plat-1":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}`), 0o600))
	must(os.WriteFile(bad, []byte(`{"cabinet_id":"NM-150102-0007","typo_key":1}`), 0o600))
	key := filepath.Join(dir, "device.key")
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no args", nil, 2},
		{"unknown", []string{"frobnicate"}, 2},
		{"version", []string{"version"}, 0},
		{"good config", []string{"check-config", good}, 0},
		{"bad config", []string{"check-config", bad}, 1},
		{"missing config", []string{"check-config", filepath.Join(dir, "none.json")}, 1},
		{"keygen", []string{"keygen", "--out", key}, 0},
		{"keygen never replaces a key", []string{"keygen", "--out", key}, 1},
		{"run without a backend", []string{"run", "--config", good}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := run(tc.args); got != tc.want {
				t.Fatalf("run(%q) = %d, want %d", tc.args, got, tc.want)
			}
		})
	}
	st, err := os.Stat(key)
	must(err)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("device key mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := loadKey(key); err != nil {
		t.Fatalf("load the key keygen wrote: %v", err)
	}
	must(os.Chmod(key, 0o644))
	if _, err := loadKey(key); err == nil {
		t.Fatal("a world-readable device key was accepted")
	}
}
