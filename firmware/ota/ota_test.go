package ota

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func usable(string) error { return nil }

func trialState(boot string, starts int) State {
	return State{
		Current:  Running{Slot: B, Version: "0.4.0"},
		Previous: &Running{Slot: Factory, Version: "0.3.0"},
		Trial:    &Trial{Slot: B, Version: "0.4.0", Boot: boot, Starts: starts, CmdID: "c1"},
	}
}

func TestDecide(t *testing.T) {
	t.Run("fresh: factory", func(t *testing.T) {
		d := Decide(State{}, "b1", "0.3.0", 3, usable, t0)
		if d.Slot != Factory || d.Version != "0.3.0" {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("trial start is recorded before it runs", func(t *testing.T) {
		d := Decide(trialState("", 0), "b1", "0.3.0", 3, usable, t0)
		if d.Slot != B || !d.Write || d.State.Trial.Starts != 1 || d.State.Trial.Boot != "b1" {
			t.Fatalf("%+v %+v", d, d.State.Trial)
		}
	})
	t.Run("failed starts in one boot roll back", func(t *testing.T) {
		d := Decide(trialState("b1", 3), "b1", "0.3.0", 3, usable, t0)
		if d.Slot != Factory || d.State.Trial != nil || d.State.Current.Slot != Factory || len(d.State.Pending) != 1 ||
			d.State.Pending[0].Kind != OutcomeRolledBack || d.State.Pending[0].From != "0.4.0" || d.State.Pending[0].To != "0.3.0" {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("a power cut (new boot) never counts", func(t *testing.T) {
		d := Decide(trialState("b1", 3), "b2", "0.3.0", 3, usable, t0)
		if d.Slot != B || d.State.Trial.Starts != 1 || d.State.Trial.Boot != "b2" || len(d.State.Pending) != 0 {
			t.Fatalf("%+v %+v", d, d.State.Trial)
		}
	})
	t.Run("fewer starts than the limit run the trial again", func(t *testing.T) {
		d := Decide(trialState("b1", 2), "b1", "0.3.0", 3, usable, t0)
		if d.Slot != B || d.State.Trial.Starts != 3 {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("rollback to a previous slot", func(t *testing.T) {
		st := trialState("b1", 3)
		st.Previous = &Running{Slot: A, Version: "0.3.5"}
		d := Decide(st, "b1", "0.3.0", 3, usable, t0)
		if d.Slot != A || d.Version != "0.3.5" {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("missing slot binary falls back to factory", func(t *testing.T) {
		st := State{Current: Running{Slot: A, Version: "0.4.0"}}
		d := Decide(st, "b1", "0.3.0", 3, func(string) error { return os.ErrNotExist }, t0)
		if d.Slot != Factory || !d.Write || len(d.State.Pending) != 1 || !strings.Contains(d.State.Pending[0].Reason, "slot a") {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("committed slot runs", func(t *testing.T) {
		d := Decide(State{Current: Running{Slot: A, Version: "0.4.0"}}, "b1", "0.3.0", 3, usable, t0)
		if d.Slot != A || d.Write {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("a newer package installed by a technician wins", func(t *testing.T) {
		d := Decide(State{Current: Running{Slot: A, Version: "0.4.0"}}, "b1", "0.5.0", 3, usable, t0)
		if d.Slot != Factory || d.Version != "0.5.0" || !d.Write {
			t.Fatalf("%+v", d)
		}
	})
}

func TestCommitRaisesFloor(t *testing.T) {
	st := trialState("b1", 1)
	st.Trial.MinVersion = "0.4.0"
	st.Floor = "0.2.0"
	c := Commit(st, t0)
	if c.Trial != nil || c.Floor != "0.4.0" || len(c.Pending) != 1 || c.Pending[0].Kind != OutcomeUpdated || c.Current.Slot != B {
		t.Fatalf("%+v", c)
	}
}

func newKey(t *testing.T) (map[string]string, ed25519.PrivateKey) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"rel-1": msg.EncodeKey(pub)}, key
}

func bundleOf(data []byte, version, min string) msg.Bundle {
	h := sha256.Sum256(data)
	return msg.Bundle{Version: version, URL: "http://127.0.0.1/x", Size: int64(len(data)), SHA256: hex.EncodeToString(h[:]), MinVersion: min}
}

func TestCheck(t *testing.T) {
	keys, key := newKey(t)
	_, other := newKey(t)
	data := []byte("binary")
	good := Sign(bundleOf(data, "0.4.0", "0.3.0"), "rel-1", key)
	if err := Check(good, keys, "0.3.0", State{}); err != nil {
		t.Fatal(err)
	}
	tampered := good
	tampered.Size++
	unsignedURL := good
	unsignedURL.URL = "https://mirror.example/x"
	for name, tc := range map[string]struct {
		b    msg.Bundle
		keys map[string]string
		st   State
		want error
	}{
		"no release key":     {good, nil, State{}, ErrNoReleaseKey},
		"unknown key":        {Sign(bundleOf(data, "0.4.0", ""), "rel-2", key), keys, State{}, ErrUnknownKey},
		"other key":          {Sign(bundleOf(data, "0.4.0", ""), "rel-1", other), keys, State{}, ErrBadSignature},
		"tampered size":      {tampered, keys, State{}, ErrBadSignature},
		"same version":       {Sign(bundleOf(data, "0.3.0", ""), "rel-1", key), keys, State{}, ErrDowngrade},
		"below the floor":    {Sign(bundleOf(data, "0.4.0", ""), "rel-1", key), keys, State{Floor: "0.5.0"}, ErrDowngrade},
		"trial running":      {good, keys, State{Trial: &Trial{Slot: A, Version: "0.3.9"}}, ErrBadBundle},
		"url is not signed":  {unsignedURL, keys, State{}, nil},
		"downgrade is named": {Sign(bundleOf(data, "0.2.0", ""), "rel-1", key), keys, State{}, ErrDowngrade},
		"garbage signature":  {msg.Bundle{Version: "0.4.0", KeyID: "rel-1", Signature: "!!"}, keys, State{}, ErrBadSignature},
	} {
		err := Check(tc.b, tc.keys, "0.3.0", tc.st)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
		if name == "downgrade is named" && (!strings.Contains(err.Error(), "0.2.0") || !strings.Contains(err.Error(), "0.3.0")) {
			t.Errorf("downgrade error does not name both versions: %v", err)
		}
	}
}

func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	path := StatePath(dir)
	st, err := Load(path)
	if err != nil || st.Current.Slot != "" {
		t.Fatalf("missing file: %+v %v", st, err)
	}
	want := trialState("b1", 2)
	if err := Save(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil || got.Trial.Starts != 2 || got.Current != want.Current {
		t.Fatalf("%+v %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	for _, garbage := range []string{`{"current":{"slot":"b","vers`, "\x00\x00\x00", `{"current":{"slot":"z"}}`, `{"bogus":1}`} {
		if err := os.WriteFile(path, []byte(garbage), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%q: %v, want ErrCorrupt", garbage, err)
		}
	}
	aside, err := SetAside(path, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(aside); err != nil {
		t.Fatal(err)
	}
	if st, err := Load(path); err != nil || st.Current.Slot != "" {
		t.Fatalf("after set aside: %+v %v", st, err)
	}
}

func TestDownload(t *testing.T) {
	data := []byte(strings.Repeat("cabinet-binary ", 1000))
	serve := data
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(serve) }))
	defer srv.Close()
	b := bundleOf(data, "0.4.0", "")
	b.URL = srv.URL
	path := filepath.Join(t.TempDir(), "cabinet")
	if err := Download1(context.Background(), nil, b, path); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if string(got) != string(data) || fi.Mode().Perm() != 0o755 {
		t.Fatalf("installed %d bytes mode %v", len(got), fi.Mode())
	}
	// Corrupt (same size), longer, shorter: refused, the slot untouched.
	for _, bad := range [][]byte{append([]byte("X"), data[1:]...), append(data, 'x'), data[:len(data)-1]} {
		serve = bad
		if err := Download1(context.Background(), nil, b, path); err == nil {
			t.Errorf("a %d-byte corrupt bundle was installed", len(bad))
		}
		if got, _ := os.ReadFile(path); string(got) != string(data) {
			t.Fatal("a refused download replaced the slot")
		}
	}
}

// The trial version's own rollback (not healthy in time) is the launcher's
// state change: previous back, trial cleared, the reason recorded.
func TestSelfRollback(t *testing.T) {
	st := Rollback(trialState("b1", 1), "not healthy within 300s: no planogram", "", usable, t0)
	if st.Trial != nil || st.Current.Slot != Factory || st.Current.Version != "0.3.0" || len(st.Pending) != 1 ||
		st.Pending[0].Kind != OutcomeRolledBack || !strings.Contains(st.Pending[0].Reason, "no planogram") {
		t.Fatalf("%+v", st)
	}
	d := Decide(st, "b1", "0.3.0", 3, usable, t0)
	if d.Slot != Factory {
		t.Fatalf("after a self rollback the launcher runs %s", d.Slot)
	}
}
