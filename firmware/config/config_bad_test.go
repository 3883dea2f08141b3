package config

// Malformed config files and `config` command settings: each is refused
// with a reason naming the problem, and a refused command leaves the
// running config exactly as it was.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bangfu/cabinet/telemetry/msg"
)

func TestMalformedConfigFileRefused(t *testing.T) {
	with := func(kv string) string { return strings.Replace(goodFile, `{`, `{`+kv+`,`, 1) }
	for _, tc := range []struct{ name, in, want string }{
		{"empty", ``, "no JSON value"},
		{"not JSON", `cabinet_id = "NM-1"`, "invalid character"},
		{"truncated", goodFile[:30], "unexpected EOF"},
		{"null", `null`, "want a JSON object"},
		{"array", `[` + goodFile + `]`, "want a JSON object"},
		{"duplicate key", with(`"heartbeat_s":5,"heartbeat_s":60`), "duplicate"},
		{"key in another case", with(`"HEARTBEAT_S":5`), "HEARTBEAT_S"},
		{"trailing brace", goodFile + `}`, "trailing data"},
		{"second object", goodFile + `{}`, "trailing data"},
		{"trailing garbage", goodFile + ` x`, "trailing data"},
		{"unknown key", with(`"heartbeat":5`), `unknown field "heartbeat"`},
		{"interval as string", with(`"heartbeat_s":"60"`), "cannot unmarshal string"},
		{"interval with a fraction", with(`"heartbeat_s":1.5`), "cannot unmarshal number"},
		{"interval overflows int", with(`"ack_wait_s":1e20`), "cannot unmarshal number"},
		{"zero interval", with(`"unlock_window_s":0`), "unlock_window_s = 0"},
		{"negative interval", with(`"settle_timeout_s":-1`), "settle_timeout_s = -1"},
		{"interval too long", with(`"qr_rotate_s":3601`), "qr_rotate_s = 3601"},
		{"negative limit", with(`"max_limit_fen":-1`), "max_limit_fen = -1"},
		{"zero threshold", with(`"weight_alarm_g":0`), "weight_alarm_g = 0"},
		{"huge threshold", with(`"foreign_min_g":1e6`), "foreign_min_g = 1e+06"},
		{"threshold overflows float64", with(`"foreign_min_g":1e400`), "cannot unmarshal number"},
		{"empty cabinet id", strings.Replace(goodFile, "NM-150102-0007", "", 1), `cabinet_id ""`},
		{"cabinet id over 64", strings.Replace(goodFile, "NM-150102-0007", strings.Repeat("N", 65), 1), "cabinet_id"},
		{"cabinet id with a line break", strings.Replace(goodFile, "NM-150102-0007", `NM-1\n`, 1), "cabinet_id"},
		{"cabinet id with an underscore", strings.Replace(goodFile, "NM-150102-0007", "NM_1", 1), "cabinet_id"},
		{"platform key short", strings.Replace(goodFile, key, key[:42], 1), "bad public key"},
		{"platform key padded", strings.Replace(goodFile, key, key+"=", 1), "bad public key"},
		{"platform key standard base64", strings.Replace(goodFile, key, strings.ReplaceAll(key, "_", "/"), 1), "bad public key"},
		{"platform key not a string", strings.Replace(goodFile, `"`+key+`"`, `42`, 1), "cannot unmarshal number"},
		{"no platform keys", strings.Replace(goodFile, `"plat-1":"`+key+`"`, ``, 1), "platform_keys"},
		{"broker http", with(`"broker":"http://127.0.0.1:1883"`), "broker"},
		{"broker without host", with(`"broker":"tcp://"`), "broker"},
		{"topic prefix wildcard", with(`"topic_prefix":"bangfu/+"`), "topic_prefix"},
		{"topic prefix trailing slash", with(`"topic_prefix":"bangfu/v1/"`), "topic_prefix"},
		{"qr base ftp", with(`"qr_base":"ftp://pay.example/q"`), "qr_base"},
		{"ack mode", with(`"ack_mode":"PLATFORM"`), "ack_mode"},
		{"empty data dir", strings.Replace(goodFile, `"/var/lib/bangfu"`, `""`, 1), "data_dir"},
		{"over the size cap", with(`"site":"` + strings.Repeat("s", 1<<20) + `"`), "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Decode(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("err %v, want config: … %q", err, tc.want)
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Fatalf("refused, yet returned %+v", c)
			}
		})
	}
}

func TestLoadRefusals(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(goodFile+"x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"missing":   filepath.Join(dir, "none.json"),
		"directory": dir,
		"malformed": bad,
	} {
		c, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), path) || !reflect.DeepEqual(c, Config{}) {
			t.Errorf("%s: %+v, %v; want an error naming the file", name, c, err)
		}
	}
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(goodFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(good); err != nil {
		t.Fatalf("good file: %v", err)
	}
}

func TestMalformedSettingsRefused(t *testing.T) {
	for _, tc := range []struct{ name, settings, want string }{
		{"identity", `{"cabinet_id":"NM-150102-0008"}`, `"cabinet_id" cannot be changed`},
		{"broker", `{"broker":"tcp://evil:1883"}`, `"broker" cannot be changed`},
		{"platform keys", `{"platform_keys":{"evil":"` + key + `"}}`, `"platform_keys" cannot be changed`},
		{"qr rotation", `{"qr_rotate_s":5}`, `"qr_rotate_s" cannot be changed`},
		{"ack mode", `{"ack_mode":"broker"}`, `"ack_mode" cannot be changed`},
		{"key in another case", `{"HEARTBEAT_S":5}`, `"HEARTBEAT_S" cannot be changed`},
		{"unknown key", `{"heartbeat_ms":5000}`, `"heartbeat_ms" cannot be changed`},
		{"a good and a forbidden key", `{"heartbeat_s":15,"broker":"tcp://evil:1883"}`, `"broker"`},
		{"a good and an invalid value", `{"heartbeat_s":15,"ledger_days":0}`, "ledger_days = 0"},
		{"negative", `{"heartbeat_s":-1}`, "heartbeat_s = -1"},
		{"zero", `{"door_open_alarm_s":0}`, "door_open_alarm_s = 0"},
		{"over the maximum", `{"unlock_window_s":601}`, "unlock_window_s = 601"},
		{"string", `{"heartbeat_s":"15"}`, "cannot unmarshal string"},
		{"fraction", `{"ledger_days":1.5}`, "cannot unmarshal number"},
		{"object", `{"heartbeat_s":{"s":15}}`, "cannot unmarshal object"},
		{"negative limit", `{"max_limit_fen":-100}`, "max_limit_fen = -100"},
		{"threshold zero", `{"foreign_min_g":0}`, "foreign_min_g = 0"},
		{"threshold over 10 kg", `{"weight_alarm_g":10000.5}`, "weight_alarm_g"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var settings map[string]json.RawMessage
			if err := msg.DecodeStrict([]byte(tc.settings), &settings); err != nil {
				t.Fatalf("the firmware would refuse these before Apply: %v", err)
			}
			base := running()
			snap := deepCopy(base)
			n, err := base.Apply(settings)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("err %v, want config: … %q", err, tc.want)
			}
			if !reflect.DeepEqual(n, snap) || !reflect.DeepEqual(base, snap) {
				t.Fatalf("refused settings changed the config: %+v", n)
			}
		})
	}
	// Settings the firmware refuses before Apply ever sees them.
	for name, in := range map[string]string{
		"duplicate key": `{"heartbeat_s":15,"heartbeat_s":86400}`,
		"trailing data": `{"heartbeat_s":15}}`,
		"not an object": `[15]`,
	} {
		var settings map[string]json.RawMessage
		if err := msg.DecodeStrict([]byte(in), &settings); err == nil {
			t.Errorf("%s: decoded as %v", name, settings)
		}
	}
	// And the same base takes a good change, so the rows fail for their
	// reason.
	n, err := running().Apply(map[string]json.RawMessage{"heartbeat_s": json.RawMessage(`15`)})
	if err != nil || n.HeartbeatS != 15 {
		t.Fatalf("good settings: %v", err)
	}
}
