package config

import (
	"encoding/json"
	"strings"
	"testing"
)

const key = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"

func TestDecode(t *testing.T) {
	good := `{"cabinet_id":"NM-150102-0007","data_dir":"/tmp/x","platform_keys":{"plat-1":"` + key + `"}}`
	tests := []struct {
		name, in, wantErr string
	}{
		{"minimal gets defaults", good, ""},
		{"unknown key", strings.Replace(good, `{`, `{"heartbeat_sec":5,`, 1), "unknown field"},
		{"bad cabinet id", strings.Replace(good, "NM-150102-0007", "NM 7", 1), "cabinet_id"},
		{"no platform key", `{"cabinet_id":"C-1","data_dir":"/x","platform_keys":{}}`, "platform_keys"},
		{"bad platform key", strings.Replace(good, key, "abc", 1), "bad public key"},
		{"zero interval", strings.Replace(good, `{`, `{"heartbeat_s":0,`, 1), "heartbeat_s"},
		{"bad ack mode", strings.Replace(good, `{`, `{"ack_mode":"none",`, 1), "ack_mode"},
		{"bad broker", strings.Replace(good, `{`, `{"broker":"http://x",`, 1), "broker"},
		{"trailing", good + `{}`, "trailing"},
		{"not json", `cabinet_id: x`, "invalid character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Decode(strings.NewReader(tc.in))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.HeartbeatS != 60 || c.AckWaitS != 60 || c.LedgerDays != 90 || c.QRRotateS != 30 || c.AckMode != "platform" {
					t.Fatalf("defaults not applied: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestApply(t *testing.T) {
	c := Default()
	c.CabinetID, c.DataDir, c.PlatformKeys = "C-1", "/x", map[string]string{"k": key}
	n, err := c.Apply(map[string]json.RawMessage{"heartbeat_s": json.RawMessage("15")})
	if err != nil || n.HeartbeatS != 15 || c.HeartbeatS != 60 {
		t.Fatalf("apply: %v %d %d", err, n.HeartbeatS, c.HeartbeatS)
	}
	for _, bad := range []map[string]json.RawMessage{
		{"broker": json.RawMessage(`"tcp://evil:1883"`)},
		{"platform_keys": json.RawMessage(`{}`)},
		{"heartbeat_s": json.RawMessage(`-1`)},
		{"heartbeat_s": json.RawMessage(`"60"`)},
	} {
		if _, err := c.Apply(bad); err == nil {
			t.Errorf("apply %v accepted", bad)
		}
	}
}
