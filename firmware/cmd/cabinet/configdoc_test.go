package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bangfu/cabinet/firmware/config"
)

// configKeys lists every key of the config file, nested ones as
// "tls.ca_file", with the Go type of its value.
func configKeys(t *testing.T) map[string]reflect.Type {
	t.Helper()
	keys := map[string]reflect.Type{}
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				t.Fatalf("%s.%s has no json key", typ.Name(), f.Name)
			}
			keys[prefix+name] = f.Type
			if f.Type.Kind() == reflect.Struct {
				walk(prefix+name+".", f.Type)
			}
		}
	}
	walk("", reflect.TypeFor[config.Config]())
	return keys
}

type docRow struct{ typ, def, applies string }

// docRows reads the tables of docs/config.md: | `key` | type | default | applies | meaning |.
func docRows(t *testing.T) map[string]docRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9_.]+)` \\| ([^|]+) \\| ([^|]+) \\| ([^|]+) \\| [^|]+ \\|$")
	rows := map[string]docRow{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		if _, dup := rows[m[1]]; dup {
			t.Errorf("docs/config.md describes %s twice", m[1])
		}
		rows[m[1]] = docRow{strings.TrimSpace(m[2]), strings.TrimSpace(m[3]), strings.TrimSpace(m[4])}
	}
	return rows
}

func docType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int64:
		return "integer"
	case reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	}
	return "object"
}

// docs/config.md describes every key of the config file, with its type, its
// default, and whether a platform `config` command may change it live (as
// config.Apply decides), and nothing else.
func TestConfigReferenceComplete(t *testing.T) {
	keys := configKeys(t)
	rows := docRows(t)
	base := config.Default()
	base.CabinetID = provID
	base.PlatformKeys = map[string]string{"plat-1": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
	defaults := map[string]json.RawMessage{}
	raw, err := json.Marshal(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &defaults); err != nil {
		t.Fatal(err)
	}
	for key, typ := range keys {
		r, ok := rows[key]
		if !ok {
			t.Errorf("docs/config.md does not describe %q", key)
			continue
		}
		if !strings.HasPrefix(r.typ, docType(typ)) {
			t.Errorf("%s: documented type %q, want %q", key, r.typ, docType(typ))
		}
		if def, ok := defaults[key]; ok && !slices.Contains([]string{`""`, `{}`, `0`, `false`}, string(def)) {
			if !strings.Contains(r.def, "`"+string(def)+"`") {
				t.Errorf("%s: documented default %q, want `%s`", key, r.def, def)
			}
		}
		live := false
		if !strings.Contains(key, ".") {
			v, ok := defaults[key]
			if !ok {
				v = json.RawMessage(`{}`)
			}
			_, err := base.Apply(map[string]json.RawMessage{key: v})
			live = err == nil
			if err != nil && !strings.Contains(err.Error(), "cannot be changed at run time") {
				t.Errorf("%s: Apply of its default: %v", key, err)
			}
		}
		switch {
		case live && !strings.HasPrefix(r.applies, "live"):
			t.Errorf("%s applies live (config.Apply takes it), docs/config.md says %q", key, r.applies)
		case !live && !strings.HasPrefix(r.applies, "restart"):
			t.Errorf("%s needs a restart (config.Apply refuses it), docs/config.md says %q", key, r.applies)
		}
	}
	for key := range rows {
		if _, ok := keys[key]; !ok {
			t.Errorf("docs/config.md describes %q, which is not a config key", key)
		}
	}
}

// The packaged sample (/etc/bangfu/cabinet.json) names every top-level key
// at its default, leaves the cabinet's identity, trust and broker empty so
// that an unprovisioned cabinet refuses to start, and validates once those
// are filled in (as provision does).
func TestPackagedSampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "..", "packaging", "cabinet.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for key := range configKeys(t) {
		if _, ok := doc[key]; !ok && !strings.Contains(key, ".") && key != "tls" {
			t.Errorf("the sample lacks %q", key)
		}
	}
	_, err = config.Decode(bytes.NewReader(b))
	if err == nil {
		t.Fatal("the sample validates as shipped: an unprovisioned cabinet would start")
	}
	for _, want := range []string{"cabinet_id", "broker", "platform_keys"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the sample's refusal does not name %s: %v", want, err)
		}
	}
	if code, _, errs := cli("check-config", path); code != 1 || !strings.Contains(errs, "3 problems") {
		t.Errorf("check-config of the sample = %d:\n%s", code, errs)
	}

	const pub = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	doc["cabinet_id"], _ = json.Marshal(provID)
	doc["broker"], _ = json.Marshal("ssl://mqtt.bangfu.example:8883")
	doc["platform_keys"], _ = json.Marshal(map[string]string{"plat-1": pub})
	doc["tls"], _ = json.Marshal(config.TLS{CAFile: "/var/lib/bangfu/tls/ca.pem", CertFile: "/var/lib/bangfu/tls/device-cert.pem", KeyFile: "/var/lib/bangfu/tls/device-key.pem"})
	filled, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Decode(bytes.NewReader(filled))
	if err != nil {
		t.Fatalf("the sample with its placeholders filled: %v", err)
	}
	want := config.Default()
	want.CabinetID, want.Broker = provID, "ssl://mqtt.bangfu.example:8883"
	want.PlatformKeys = map[string]string{"plat-1": pub}
	want.TLS = got.TLS
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the sample's settings differ from the defaults:\n got %+v\nwant %+v", got, want)
	}
}
