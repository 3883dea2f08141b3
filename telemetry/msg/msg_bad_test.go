package msg

// Malformed input, one row per way to be wrong: each is refused with a
// reason that names the problem, and nothing is decoded into the target.

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodeStrictRefusals(t *testing.T) {
	deep := `{"id":"c","settings":{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}}`
	for _, tc := range []struct {
		name   string
		in     string
		target func() any
		want   string // in the error; "" means accepted
	}{
		// accepted, so that the table can tell strict from broken
		{"ack", `{"sales_upto_seq":3,"at":"2026-11-26T03:00:00.000Z"}`, newAck, ""},
		{"trailing whitespace", "{\"sales_upto_seq\":3,\"at\":null} \n\t", newAck, ""},
		{"map keys differing in case", `{"id":"c","settings":{"a":1,"A":2}}`, newCommand, ""},
		{"nesting at the limit", `{"id":"c","settings":{"a":` + strings.Repeat("[", MaxDepth-2) + strings.Repeat("]", MaxDepth-2) + `}}`, newCommand, ""},
		{"time with offset", `{"sales_upto_seq":1,"at":"2026-11-26T11:00:00+08:00"}`, newAck, ""},

		{"empty", ``, newAck, "no JSON value"},
		{"whitespace only", " \n", newAck, "no JSON value"},
		{"not JSON", `sales_upto_seq: 3`, newAck, "invalid character"},
		{"truncated", `{"sales_upto_seq":3,`, newAck, "EOF"},
		{"null message", `null`, newAck, "want a JSON object"},
		{"array message", `[{"sales_upto_seq":3}]`, newAck, "want a JSON object"},
		{"string message", `"ack"`, newAck, "want a JSON object"},
		{"second value", `{"sales_upto_seq":3} {}`, newAck, "trailing data"},
		{"trailing bracket", `{"sales_upto_seq":3}]`, newAck, "trailing data"},
		{"trailing brace", `{"sales_upto_seq":3}}`, newAck, "trailing data"},
		{"trailing garbage", `{"sales_upto_seq":3}x`, newAck, "trailing data"},
		{"trailing NUL", "{\"sales_upto_seq\":3}\x00", newAck, "trailing data"},

		{"unknown field, top", `{"sales_upto_seq":3,"upto":4}`, newAck, `unknown field "upto"`},
		{"unknown field, product", `{"version":2,"products":[{"sku":"a","discount_fen":1}]}`, newCatalog, `unknown field "discount_fen"`},
		{"unknown field, shelf", `{"version":2,"shelves":[{"shelf":1,"door":1,"skus":[],"x":0}]}`, newPlanogram, `unknown field "x"`},
		{"unknown field, buyer", `{"id":"c","buyer":{"ref":"u","kind":"person","org":"","vip":true}}`, newCommand, `unknown field "vip"`},
		{"field in upper case", `{"SALES_UPTO_SEQ":3}`, newAck, `unknown field "SALES_UPTO_SEQ"`},
		{"field with a long s", `{"products":[{"ſku":"NM-0001"}]}`, newCatalog, `unknown field "ſku"`},
		{"field with a Kelvin sign", `{"id":"c","buyer":{"\u212aind":"person"}}`, newCommand, "unknown field"},

		{"duplicate key, top", `{"sales_upto_seq":3,"sales_upto_seq":999}`, newAck, `duplicate key "sales_upto_seq"`},
		{"duplicate price_fen", `{"version":2,"products":[{"sku":"a","price_fen":1,"price_fen":2990}]}`, newCatalog, `duplicate key "price_fen"`},
		{"duplicate key differing in case", `{"version":2,"products":[{"price_fen":1,"PRICE_FEN":2990}]}`, newCatalog, "PRICE_FEN"},
		{"duplicate setting", `{"id":"c","settings":{"heartbeat_s":5,"heartbeat_s":86400}}`, newCommand, `duplicate key "heartbeat_s"`},
		{"duplicate inside a raw value", `{"id":"c","settings":{"a":{"b":1,"b":2}}}`, newCommand, `duplicate key "b"`},
		{"duplicate escaped key", `{"sales_upto_seq":3,"sales_upto_\u0073eq":4}`, newAck, "duplicate key"},

		{"nested too deep", deep, newCommand, "nested deeper"},
		{"price as string", `{"version":2,"products":[{"price_fen":"2990"}]}`, newCatalog, "cannot unmarshal"},
		{"price fractional", `{"version":2,"products":[{"price_fen":29.9}]}`, newCatalog, "cannot unmarshal"},
		{"price over int64", `{"version":2,"products":[{"price_fen":9223372036854775808}]}`, newCatalog, "cannot unmarshal"},
		{"negative seq", `{"sales_upto_seq":-1}`, newAck, "cannot unmarshal"},
		{"weight overflows float64", `{"version":2,"products":[{"unit_weight_g":1e400}]}`, newCatalog, "cannot unmarshal"},
		{"time not RFC 3339", `{"sales_upto_seq":1,"at":"26/11/2026"}`, newAck, "not RFC 3339"},
		{"time past year 9999 in UTC", `{"sales_upto_seq":1,"at":"9999-12-31T23:59:59-23:59"}`, newAck, "year 10000"},
		{"time before year 1 in UTC", `{"sales_upto_seq":1,"at":"0001-01-01T00:00:00+01:00"}`, newAck, "year 0"},
		{"time over-long", `{"sales_upto_seq":1,"at":"2026-11-26T03:00:00.` + strings.Repeat("0", 80) + `Z"}`, newAck, "time of"},
		{"time a number", `{"sales_upto_seq":1,"at":1764126000}`, newAck, "time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.target()
			err := DecodeStrict([]byte(tc.in), v)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to say %q", err, tc.want)
			}
			if len(err.Error()) > 256 {
				t.Fatalf("reason of %d bytes", len(err.Error()))
			}
		})
	}
}

func newAck() any       { return new(Ack) }
func newCatalog() any   { return new(Catalog) }
func newPlanogram() any { return new(Planogram) }
func newCommand() any   { return new(Command) }

// The size cap comes before any parsing: an oversize envelope costs no
// allocation at all, on the MQTT handler's path (Open, OpenInto) as in
// DecodeStrict.
func TestOversizeRefusedBeforeParsing(t *testing.T) {
	_, ring := fuzzKeys()
	big := bytes.Repeat([]byte("{"), MaxPayloadBytes+1) // would be a syntax error if parsed
	var a Ack
	if _, _, err := ring.Open(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Open: %v, want ErrTooLarge", err)
	}
	if _, err := ring.OpenInto(big, &a); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("OpenInto: %v, want ErrTooLarge", err)
	}
	if err := DecodeStrict(big, &a); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("DecodeStrict: %v, want ErrTooLarge", err)
	}
	if n := testing.AllocsPerRun(10, func() { _, _, _ = ring.Open(big) }); n != 0 {
		t.Fatalf("Open allocated %v times on an oversize envelope", n)
	}
	if n := testing.AllocsPerRun(10, func() { _ = DecodeStrict(big, &a) }); n != 0 {
		t.Fatalf("DecodeStrict allocated %v times on oversize input", n)
	}
	// At the cap exactly it is parsed (and here refused as JSON).
	if _, _, err := ring.Open(big[:MaxPayloadBytes]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Open at the cap: %v, want ErrMalformed", err)
	}
}

func TestOpenRefusals(t *testing.T) {
	s, ring := fuzzKeys()
	good := mustSeal(s, Ack{SalesUptoSeq: 7, At: At(fuzzT0)})
	var env Envelope
	if err := json.Unmarshal(good, &env); err != nil {
		t.Fatal(err)
	}
	mut := func(f func(e *Envelope)) []byte {
		e := env
		f(&e)
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	other := []byte(`{"sales_upto_seq":999,"at":null}`)
	otherSig := b64.EncodeToString(ed25519.Sign(s.Key, other))
	raw := func(repl ...string) []byte { return []byte(strings.NewReplacer(repl...).Replace(string(good))) }
	for _, tc := range []struct {
		name string
		data []byte
		want error
		say  string // in the error
	}{
		{"v 0", mut(func(e *Envelope) { e.V = 0 }), ErrMalformed, "v=0"},
		{"v 2", mut(func(e *Envelope) { e.V = 2 }), ErrMalformed, "v=2"},
		{"v as string", raw(`"v":1`, `"v":"1"`), ErrMalformed, "cannot unmarshal"},
		{"v missing", raw(`"v":1,`, ``), ErrMalformed, "v=0"},
		{"alg lower case", mut(func(e *Envelope) { e.Alg = "ed25519" }), ErrMalformed, "alg"},
		{"alg none", mut(func(e *Envelope) { e.Alg = "none" }), ErrMalformed, "alg"},
		{"kid empty", mut(func(e *Envelope) { e.Kid = "" }), ErrMalformed, "kid"},
		{"kid with a control character", mut(func(e *Envelope) { e.Kid = "plat\x00fuzz" }), ErrMalformed, "kid"},
		{"kid over-long", mut(func(e *Envelope) { e.Kid = strings.Repeat("k", 10_000) }), ErrMalformed, "kid"},
		{"kid unknown", mut(func(e *Envelope) { e.Kid = "plat-x" }), ErrUnknownKey, "plat-x"},
		{"key of wrong length", mut(func(e *Envelope) { e.Kid = "plat-short" }), ErrUnknownKey, "plat-short"},
		{"payload not base64", mut(func(e *Envelope) { e.Payload = "{}" }), ErrMalformed, "payload"},
		{"payload padded", mut(func(e *Envelope) { e.Payload += "=" }), ErrMalformed, "payload"},
		{"payload standard alphabet", mut(func(e *Envelope) { e.Payload = "+/" + e.Payload[2:] }), ErrMalformed, "payload"},
		{"payload with a line break", mut(func(e *Envelope) { e.Payload = e.Payload[:4] + "\r\n" + e.Payload[4:] }), ErrMalformed, "line break"},
		{"payload empty", mut(func(e *Envelope) { e.Payload = "" }), ErrBadSig, ""},
		{"sig not base64", mut(func(e *Envelope) { e.Sig = "not base64!" }), ErrMalformed, "sig"},
		{"sig empty", mut(func(e *Envelope) { e.Sig = "" }), ErrMalformed, "sig"},
		{"sig one byte short", mut(func(e *Envelope) { e.Sig = b64.EncodeToString(make([]byte, 63)) }), ErrMalformed, "sig"},
		{"sig one byte long", mut(func(e *Envelope) { e.Sig = b64.EncodeToString(make([]byte, 65)) }), ErrMalformed, "sig"},
		{"sig with padding bits set", mut(func(e *Envelope) { e.Sig = e.Sig[:85] + string(nonCanonical(e.Sig[85])) }), ErrMalformed, "sig"},
		{"sig over different bytes", mut(func(e *Envelope) { e.Sig = otherSig }), ErrBadSig, ""},
		{"payload swapped under its sig", mut(func(e *Envelope) { e.Payload = b64.EncodeToString(other) }), ErrBadSig, ""},
		{"duplicate payload key", raw(`"payload":`, `"payload":"`+b64.EncodeToString(other)+`","payload":`), ErrMalformed, "duplicate key"},
		{"field in upper case", raw(`"sig"`, `"Sig"`), ErrMalformed, "unknown field"},
		{"unknown field", raw(`{"v":1`, `{"v":1,"exp":0`), ErrMalformed, "unknown field"},
		{"trailing garbage", append(append([]byte{}, good...), "\n--"...), ErrMalformed, "trailing"},
		{"not JSON", []byte("v=1&kid=plat-fuzz"), ErrMalformed, "invalid character"},
		{"null", []byte("null"), ErrMalformed, "object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a Ack
			_, err := ring.OpenInto(tc.data, &a)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("err %v, want %v saying %q", err, tc.want, tc.say)
			}
			if len(err.Error()) > 256 {
				t.Fatalf("reason of %d bytes", len(err.Error()))
			}
			if a != (Ack{}) {
				t.Fatalf("refused envelope decoded into the target: %+v", a)
			}
		})
	}
	// The same good envelope opens: the rows above fail for their reason.
	var a Ack
	if _, err := ring.OpenInto(good, &a); err != nil || a.SalesUptoSeq != 7 {
		t.Fatalf("good envelope: %+v, %v", a, err)
	}
}

// nonCanonical returns the base64url digit for the same leading bits as c
// with the lowest (padding) bit flipped.
func nonCanonical(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return alphabet[strings.IndexByte(alphabet, c)^1]
}

func TestDecodeKeyRefusals(t *testing.T) {
	_, ring := fuzzKeys()
	good := EncodeKey(ring["plat-fuzz"])
	if _, err := DecodeKey(good); err != nil {
		t.Fatalf("good key: %v", err)
	}
	for name, k := range map[string]string{
		"empty":           "",
		"31 bytes":        EncodeKey(make([]byte, 31)),
		"33 bytes":        EncodeKey(make([]byte, 33)),
		"padded":          good + "=",
		"line break":      good[:10] + "\n" + good[10:],
		"padding bit set": good[:42] + string(nonCanonical(good[42])),
		"hex":             "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
	} {
		if _, err := DecodeKey(k); err == nil {
			t.Errorf("%s: accepted %q", name, k)
		}
	}
}

func TestValidText(t *testing.T) {
	for _, tc := range []struct {
		s    string
		max  int
		want bool
	}{
		{"", 8, true},
		{"NM-0001", 8, true},
		{"武川莜面 250克", MaxTextBytes, true},
		{"a\u3000b", 8, true}, // ideographic space
		{"NM-00012", 7, false},
		{"NM\x000001", 64, false},
		{"NM-0001\n", 64, false},
		{"NM\t1", 64, false},
		{"\x7f", 64, false},
		{"\u0085", 64, false},       // C1 next line
		{"NM\u202e1000", 64, false}, // right-to-left override
		{"NM\u200b1", 64, false},    // zero-width space
		{"a\u2028b", 64, false},     // line separator
		{"\ue000", 64, false},       // private use
		{"\xff", 64, false},
	} {
		if got := ValidText(tc.s, tc.max); got != tc.want {
			t.Errorf("ValidText(%q, %d) = %v, want %v", tc.s, tc.max, got, tc.want)
		}
	}
}

// A time past year 9999 in UTC would be written by MarshalJSON in a form
// that does not parse again.
func TestTimeRoundTripsOrIsRefused(t *testing.T) {
	for _, in := range []string{
		`"0001-01-01T00:00:00Z"`, `"2026-11-26T03:04:05.678901234Z"`, `"9999-12-31T23:59:59.999Z"`,
		`"9999-12-31T23:59:59+23:59"`, `"0001-01-01T00:00:00-01:00"`,
	} {
		var tm Time
		if err := json.Unmarshal([]byte(in), &tm); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		out, err := json.Marshal(tm)
		if err != nil {
			t.Fatal(err)
		}
		var back Time
		if err := json.Unmarshal(out, &back); err != nil || !back.Equal(tm.Truncate(time.Millisecond)) {
			t.Fatalf("%s → %s → %v, %v", in, out, back, err)
		}
	}
}
