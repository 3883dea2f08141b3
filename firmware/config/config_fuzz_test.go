package config

// FuzzConfigFile (Decode and Load over arbitrary bytes) and
// FuzzConfigCommand (a platform `config` command's settings, decoded as
// the firmware decodes them, then Apply). Their committed seeds are in
// testdata/fuzz/Fuzz*/; TestFuzzSeedsCommitted checks them, and rewrites
// them with
//
//	go test ./firmware/config -run TestFuzzSeedsCommitted -update-corpus

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bangfu/cabinet/internal/fuzzseed"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// fixedAtRunTime are settings Apply's doc says a command never changes:
// identity, keys, broker, QR rotation, ack settings.
var fixedAtRunTime = []string{"cabinet_id", "region", "data_dir", "platform_keys", "broker", "topic_prefix",
	"qr_base", "qr_rotate_s", "ack_wait_s", "ack_mode"}

// running is a valid config as a cabinet runs with it.
func running() Config {
	c := Default()
	c.CabinetID, c.Region, c.DataDir = "NM-150102-0007", "150000", "/var/lib/bangfu"
	c.PlatformKeys = map[string]string{"plat-1": key}
	c.MaxLimitFen = 100_000
	return c
}

// deepCopy copies c including its map, to compare against later.
func deepCopy(c Config) Config {
	c.PlatformKeys = maps.Clone(c.PlatformKeys)
	return c
}

// asFields is c as JSON fields.
func asFields(t *testing.T, c Config) map[string]json.RawMessage {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// FuzzConfigFile: Decode never panics; a refusal returns the zero Config
// and an error saying "config:"; an accepted config validates, survives an
// encode/decode round trip, and Load reads the same bytes from a file the
// same way.
func FuzzConfigFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(bytes.NewReader(data))
		path := filepath.Join(t.TempDir(), "cabinet.json")
		if werr := os.WriteFile(path, data, 0o600); werr != nil {
			t.Fatal(werr)
		}
		lc, lerr := Load(path)
		if (err == nil) != (lerr == nil) || !reflect.DeepEqual(c, lc) {
			t.Fatalf("Decode gave %v, Load %v", err, lerr)
		}
		if err != nil {
			if !reflect.DeepEqual(c, Config{}) {
				t.Fatalf("refused, yet returned %+v", c)
			}
			if !strings.HasPrefix(err.Error(), "config: ") || !strings.HasPrefix(lerr.Error(), path+": config: ") {
				t.Fatalf("refusal without the package prefix: %v / %v", err, lerr)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted a config that does not validate: %v", err)
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := Decode(bytes.NewReader(again))
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, c, c2)
		}
	})
}

// FuzzConfigCommand: the settings of a `config` command never panic Apply;
// a refusal leaves the running config as it was and returns it unchanged;
// an accepted one changes only settings it names, never identity, keys,
// broker, QR rotation or ack settings, and validates.
func FuzzConfigCommand(f *testing.F) {
	f.Fuzz(func(t *testing.T, settingsJSON []byte) {
		var settings map[string]json.RawMessage
		if err := msg.DecodeStrict(settingsJSON, &settings); err != nil {
			return // the firmware refuses the whole command before Apply
		}
		base := running()
		snap := deepCopy(base)
		n, err := base.Apply(settings)
		if !reflect.DeepEqual(base, snap) {
			t.Fatalf("Apply changed the running config: %+v", base)
		}
		if err != nil {
			if !reflect.DeepEqual(n, snap) {
				t.Fatalf("refused (%v), yet returned a changed config: %+v", err, n)
			}
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("refusal without the package prefix: %v", err)
			}
			return
		}
		if err := n.Validate(); err != nil {
			t.Fatalf("accepted settings give an invalid config: %v", err)
		}
		was, now := asFields(t, snap), asFields(t, n)
		for _, k := range fixedAtRunTime {
			if !bytes.Equal(now[k], was[k]) {
				t.Fatalf("a command changed %s from %s to %s", k, was[k], now[k])
			}
		}
		for k, v := range now {
			if _, named := settings[k]; !named && !bytes.Equal(v, was[k]) {
				t.Fatalf("%s changed from %s to %s, not named in %s", k, was[k], v, settingsJSON)
			}
		}
	})
}

const goodFile = `{"cabinet_id":"NM-150102-0007","data_dir":"/var/lib/bangfu","platform_keys":{"plat-1":"` + key + `"}}`

// fullFile sets every setting of the original v1 config by hand (not by
// marshalling Config, so a field added later does not stale the seed).
const fullFile = `{
  "cabinet_id": "NM-150102-0007", "site": "呼和浩特市 赛罕区 总工会", "region": "150000",
  "broker": "tcp://127.0.0.1:1883", "topic_prefix": "bangfu/v1", "data_dir": "/var/lib/bangfu",
  "platform_keys": {"plat-1": "` + key + `"}, "qr_base": "https://pay.bangfu.example/q",
  "qr_rotate_s": 30, "heartbeat_s": 60, "ack_wait_s": 60, "ack_mode": "broker", "ledger_days": 90,
  "unlock_window_s": 30, "door_open_alarm_s": 120, "settle_timeout_s": 10,
  "weight_alarm_g": 20.5, "foreign_min_g": 10, "max_limit_fen": 100000
}`

func fileSeeds() map[string][]byte {
	full := []byte(fullFile)
	with := func(kv string) []byte { return []byte(strings.Replace(goodFile, `{`, `{`+kv+`,`, 1)) }
	return map[string][]byte{
		"valid-minimal":      []byte(goodFile),
		"valid-full":         full,
		"unknown-key":        with(`"heartbeat_sec":5`),
		"bad-cabinet-id":     []byte(strings.Replace(goodFile, "NM-150102-0007", "NM 0007\n", 1)),
		"no-platform-key":    []byte(`{"cabinet_id":"C-1","data_dir":"/x","platform_keys":{}}`),
		"short-platform-key": []byte(strings.Replace(goodFile, key, key[:40], 1)),
		"zero-interval":      with(`"heartbeat_s":0`),
		"huge-interval":      with(`"heartbeat_s":9223372036854775807`),
		"negative-limit":     with(`"max_limit_fen":-1`),
		"nan-threshold":      with(`"weight_alarm_g":"NaN"`),
		"bad-ack-mode":       with(`"ack_mode":"none"`),
		"http-broker":        with(`"broker":"http://127.0.0.1:1883"`),
		"prefix-wildcard":    with(`"topic_prefix":"bangfu/#"`),
		"duplicate-key":      with(`"heartbeat_s":5,"heartbeat_s":60`),
		"trailing-object":    []byte(goodFile + `{}`),
		"trailing-brace":     []byte(goodFile + `}`),
		"not-json":           []byte("cabinet_id: NM-1\n"),
		"null":               []byte("null"),
		"empty":              {},
	}
}

func commandSeeds() map[string][]byte {
	return map[string][]byte{
		"valid-heartbeat":      []byte(`{"heartbeat_s":15}`),
		"valid-all-live":       []byte(`{"heartbeat_s":30,"ledger_days":120,"unlock_window_s":20,"door_open_alarm_s":90,"settle_timeout_s":8,"weight_alarm_g":15.5,"foreign_min_g":8,"max_limit_fen":0}`),
		"valid-empty":          []byte(`{}`),
		"broker":               []byte(`{"broker":"tcp://evil:1883"}`),
		"platform-keys":        []byte(`{"platform_keys":{"evil":"` + key + `"}}`),
		"qr-rotate":            []byte(`{"qr_rotate_s":3600}`),
		"ack-mode":             []byte(`{"ack_mode":"broker"}`),
		"cabinet-id":           []byte(`{"cabinet_id":"NM-150102-0008"}`),
		"case-variant":         []byte(`{"Heartbeat_S":15}`),
		"negative":             []byte(`{"heartbeat_s":-1}`),
		"zero":                 []byte(`{"settle_timeout_s":0}`),
		"over-max":             []byte(`{"unlock_window_s":601}`),
		"string-number":        []byte(`{"heartbeat_s":"60"}`),
		"fraction":             []byte(`{"heartbeat_s":1.5}`),
		"object-value":         []byte(`{"heartbeat_s":{"value":60}}`),
		"null-value":           []byte(`{"heartbeat_s":null}`),
		"float-overflow":       []byte(`{"weight_alarm_g":1e400}`),
		"threshold-zero":       []byte(`{"foreign_min_g":0}`),
		"limit-negative":       []byte(`{"max_limit_fen":-5}`),
		"duplicate-key":        []byte(`{"heartbeat_s":15,"heartbeat_s":86400}`),
		"one-good-one-bad":     []byte(`{"heartbeat_s":15,"broker":"tcp://evil:1883"}`),
		"one-good-one-invalid": []byte(`{"heartbeat_s":15,"ledger_days":0}`),
		"trailing":             []byte(`{"heartbeat_s":15}]`),
		"array":                []byte(`[{"heartbeat_s":15}]`),
	}
}

func TestFuzzSeedsCommitted(t *testing.T) {
	fuzzseed.Bytes(t, "FuzzConfigFile", fileSeeds())
	fuzzseed.Bytes(t, "FuzzConfigCommand", commandSeeds())
}

// The seeds named valid… are accepted and the others refused (duplicate
// keys, a trailing '}' and a null setting included).
func TestFuzzSeedsAcceptedOrRefused(t *testing.T) {
	for name, data := range fileSeeds() {
		_, err := Decode(bytes.NewReader(data))
		if strings.HasPrefix(name, "valid") != (err == nil) {
			t.Errorf("file %s: err %v", name, err)
		}
	}
	for name, data := range commandSeeds() {
		var settings map[string]json.RawMessage
		err := msg.DecodeStrict(data, &settings)
		if err == nil {
			_, err = running().Apply(settings)
		}
		if strings.HasPrefix(name, "valid") != (err == nil) {
			t.Errorf("settings %s: err %v", name, err)
		}
	}
}
