package strict

import (
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestBase64URL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // in the error; "" means accepted
	}{
		{"", ""},
		{"AQID", ""},
		{"AQI", ""},        // 2 bytes, zero padding bits
		{"AQJ", "illegal"}, // the same 2 bytes with a padding bit set
		{"AQI=", "illegal"},
		{"AQ+/", "illegal"}, // standard alphabet
		{"AQ\nID", "line break"},
		{"AQID\r", "line break"},
		{"A", "illegal"},
	} {
		b, err := Base64URL(tc.in)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.in, err)
			} else if again := base64.RawURLEncoding.EncodeToString(b); again != tc.in {
				t.Errorf("%q decodes to %x, which encodes as %q", tc.in, b, again)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want it to say %q", tc.in, err, tc.want)
		}
	}
}

func TestJSON(t *testing.T) {
	type inner struct {
		B int `json:"b"`
	}
	type doc struct {
		A     int            `json:"a"`
		In    *inner         `json:"in"`
		M     map[string]int `json:"m"`
		inner `json:"-"`
	}
	for _, tc := range []struct {
		in   string
		want string // in the error; "" means accepted
		rule bool   // a RuleError, not encoding/json's
	}{
		{`{"a":1,"in":{"b":2},"m":{"x":1,"X":2}} `, "", false},
		{`{"a":1,"a":2}`, `duplicate key "a"`, true},
		{`{"m":{"x":1,"x":2}}`, `duplicate key "x"`, true},
		{`{"A":1}`, `unknown field "A"`, true},
		{`{"in":{"B":1}}`, `unknown field "B"`, true},
		{`{"a":1}]`, "trailing data", true},
		{`{"a":1} {}`, "trailing data", true},
		{`null`, "want a JSON object", true},
		{` `, "no JSON value", true},
		{`{"a":`, "cut short", true},
		{`{"m":{"x":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}}`, "nested deeper", true},
		{`{"a":"1"}`, "cannot unmarshal", false},
		{`{"a" 1}`, "invalid character", false},
	} {
		var d doc
		err := JSON([]byte(tc.in), &d)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to say %q", tc.in, err, tc.want)
			continue
		}
		if _, ok := errors.AsType[*RuleError](err); ok != tc.rule {
			t.Errorf("%s: %T is a RuleError: %v, want %v", tc.in, err, ok, tc.rule)
		}
	}
	if err := JSON([]byte(`{"a":`), new(doc)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut short: %v, want io.ErrUnexpectedEOF", err)
	}
}
