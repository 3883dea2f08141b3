package msg

// FuzzOpenEnvelope and its committed seed corpus (testdata/fuzz/
// FuzzOpenEnvelope). The seeds are real envelopes sealed with a fixed test
// key and fixed timestamps, so the files never change; TestFuzzSeedsCommitted
// checks that they match what seeds() builds, and rewrites them with
//
//	go test ./telemetry/msg -run TestFuzzSeedsCommitted -update-corpus

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/internal/fuzzseed"
)

// fuzzT0 is the fixed time of every seed.
var fuzzT0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

// fuzzKeys are a fixed platform key (seeds must verify on every run) and a
// ring trusting it, plus a kid whose provisioned key has the wrong length.
func fuzzKeys() (Signer, KeyRing) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, ed25519.SeedSize))
	return Signer{Kid: "plat-fuzz", Key: priv},
		KeyRing{"plat-fuzz": priv.Public().(ed25519.PublicKey), "plat-short": make(ed25519.PublicKey, 31)}
}

func mustSeal(s Signer, body any) []byte {
	b, err := s.Seal(body)
	if err != nil {
		panic(err)
	}
	return b
}

func mustSealBytes(s Signer, payload []byte) []byte {
	b, err := s.SealBytes(payload)
	if err != nil {
		panic(err)
	}
	return b
}

// envelopeSeeds are the FuzzOpenEnvelope seeds: (data, sign). With sign
// the data is a payload the fuzz target seals itself, which lets the fuzzer
// reach DecodeStrict with content that verifies.
func envelopeSeeds() map[string][]any {
	s, _ := fuzzKeys()
	ack := Ack{SalesUptoSeq: 118, At: At(fuzzT0)}
	cmd := Command{ID: "cmd-1", Type: CmdUnlock, CabinetID: "NM-150102-0007", IssuedAt: At(fuzzT0),
		ExpiresAt: At(fuzzT0.Add(time.Minute)), SessionID: "S-1", QRNonce: "AQIDBAUGBwgJCgsM",
		Buyer: &Buyer{Ref: "wx-1", Kind: BuyerUnion, Org: "呼和浩特市总工会"}, LimitFen: 50000, Door: 1}
	cat := Catalog{Version: 2, IssuedAt: At(fuzzT0), Region: "150000", Products: []Product{{
		SKU: "NM-0001", CertNo: "FP-150125-2024-0031", Name: "武川莜面", SupplierID: "S-150125-003",
		Supplier: "武川县禾川莜麦种植专业合作社", OriginCode: "150125", Origin: "内蒙古自治区呼和浩特市武川县",
		UnitWeightG: 780, WeightTolG: 5, PriceFen: 2680, ValidUntil: At(fuzzT0.AddDate(1, 0, 0)), Status: StatusActive}}}
	plan := Planogram{Version: 7, CabinetID: "NM-150102-0007", Shelves: []PlanogramShelf{
		{Shelf: 1, Door: 1, SKUs: []string{"NM-0001", "NM-0007"}, Lanes: map[string]float64{"NM-0001": 0.25, "NM-0007": 0.75}},
		{Shelf: 2, Door: 1, SKUs: []string{"NM-0012"}}}}
	good := mustSeal(s, ack)
	var env Envelope
	if err := json.Unmarshal(good, &env); err != nil {
		panic(err)
	}
	mut := func(f func(e *Envelope)) []byte {
		e := env
		f(&e)
		b, err := json.Marshal(e)
		if err != nil {
			panic(err)
		}
		return b
	}
	other := mustSeal(s, Ack{SalesUptoSeq: 999, At: At(fuzzT0)})
	var otherEnv Envelope
	if err := json.Unmarshal(other, &otherEnv); err != nil {
		panic(err)
	}
	// 64 bytes take 86 base64 characters, the last 4 of their 516 bits
	// padding: setting one decodes to the same signature unless strict.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	flip := []byte(env.Sig)
	flip[len(flip)-1] = alphabet[strings.IndexByte(alphabet, flip[len(flip)-1])^1]
	return map[string][]any{
		"valid-ack":             {good, false},
		"valid-command":         {mustSeal(s, cmd), false},
		"valid-catalog":         {mustSeal(s, cat), false},
		"payload-ack":           {[]byte(`{"sales_upto_seq":3,"at":"2026-11-26T03:00:00.000Z"}`), true},
		"payload-dup-key":       {[]byte(`{"sales_upto_seq":3,"sales_upto_seq":999,"at":null}`), true},
		"payload-case-variant":  {[]byte(`{"version":2,"VERSION":9,"issued_at":null,"region":"x","products":[]}`), true},
		"payload-long-s":        {[]byte(`{"products":[{"ſku":"NM-0001"}]}`), true},
		"payload-trailing":      {[]byte(`{"sales_upto_seq":3,"at":null}]`), true},
		"payload-deep":          {[]byte(`{"id":"c","settings":{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`), true},
		"payload-year-10000":    {[]byte(`{"sales_upto_seq":1,"at":"9999-12-31T23:59:59-23:59"}`), true},
		"payload-null":          {[]byte(`null`), true},
		"valid-planogram-lanes": {mustSeal(s, plan), false},
		"payload-lanes-bad":     {[]byte(`{"version":7,"shelves":[{"shelf":1,"skus":["A"],"lanes":{"A":-0.1,"B":0.5,"":1e308}}]}`), true},
		"payload-lanes-dup":     {[]byte(`{"version":7,"shelves":[{"shelf":1,"skus":["A"],"lanes":{"A":0.1,"A":0.9}}]}`), true},
		"not-json":              {[]byte(`{"v":1,`), false},
		"trailing-garbage":      {append(append([]byte{}, good...), " x"...), false},
		"trailing-brace":        {append(append([]byte{}, good...), '}'), false},
		"unknown-field":         {[]byte(strings.Replace(string(good), `{"v":1`, `{"v":1,"x":2`, 1)), false},
		"upper-case-field":      {[]byte(strings.Replace(string(good), `"kid"`, `"KID"`, 1)), false},
		"dup-payload":           {[]byte(strings.Replace(string(good), `"payload":`, `"payload":"`+otherEnv.Payload+`","payload":`, 1)), false},
		"v2":                    {mut(func(e *Envelope) { e.V = 2 }), false},
		"alg-lower":             {mut(func(e *Envelope) { e.Alg = "ed25519" }), false},
		"kid-unknown":           {mut(func(e *Envelope) { e.Kid = "plat-x" }), false},
		"kid-short-key":         {mut(func(e *Envelope) { e.Kid = "plat-short" }), false},
		"kid-control":           {mut(func(e *Envelope) { e.Kid = "plat-fuzz\n" }), false},
		"payload-swapped":       {mut(func(e *Envelope) { e.Payload = otherEnv.Payload }), false},
		"payload-padded":        {mut(func(e *Envelope) { e.Payload += "==" }), false},
		"payload-std-b64":       {mut(func(e *Envelope) { e.Payload = strings.ReplaceAll(e.Payload, "_", "/") + "+" }), false},
		"payload-newline":       {mut(func(e *Envelope) { e.Payload = e.Payload[:8] + "\n" + e.Payload[8:] }), false},
		"sig-bad-b64":           {mut(func(e *Envelope) { e.Sig = "!!" }), false},
		"sig-short":             {mut(func(e *Envelope) { e.Sig = e.Sig[:20] }), false},
		"sig-padding-bit":       {mut(func(e *Envelope) { e.Sig = string(flip) }), false},
		"empty":                 {[]byte{}, false},
		"array":                 {[]byte(`[1,2]`), false},
	}
}

func TestFuzzSeedsCommitted(t *testing.T) {
	files := map[string][]byte{}
	for name, args := range envelopeSeeds() {
		files[name] = fuzzseed.File(args...)
	}
	fuzzseed.Check(t, "FuzzOpenEnvelope", files)
}

// FuzzOpenEnvelope: Open never panics; what it accepts verifies under the
// ring, is canonically encoded and re-seals to the same payload; what it
// refuses is refused with one of the envelope errors and a short reason;
// a payload sealed with a trusted key always opens. DecodeStrict, on every
// verified payload and every v1 type the cabinet receives, accepts only what
// encoding/json decodes to the same value, and what it accepts survives a
// round trip. A decoded planogram's lanes are checked without a panic.
func FuzzOpenEnvelope(f *testing.F) {
	signer, ring := fuzzKeys()
	// Oversize input is left to TestOversizeRefusedBeforeParsing: as a
	// seed it would make every mutation cost a quarter megabyte.
	f.Fuzz(func(t *testing.T, data []byte, sign bool) {
		env := data
		if sign {
			env = mustSealBytes(signer, data)
		}
		payload, kid, err := ring.Open(env)
		if err != nil {
			if sign && len(env) <= MaxPayloadBytes {
				t.Fatalf("a payload sealed with a trusted key was refused: %v", err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrBadSig) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("refusal is none of the envelope errors: %v", err)
			}
			if len(err.Error()) > 512 {
				t.Fatalf("refusal reason of %d bytes echoes the input", len(err.Error()))
			}
			return
		}
		var e Envelope
		if err := json.Unmarshal(env, &e); err != nil {
			t.Fatalf("accepted an envelope encoding/json cannot read: %v", err)
		}
		sig, err := b64.DecodeString(e.Sig)
		if err != nil || e.Kid != kid || !ed25519.Verify(ring[kid], payload, sig) {
			t.Fatalf("accepted an envelope that does not verify under kid %q", kid)
		}
		if e.Payload != b64.EncodeToString(payload) || e.Sig != b64.EncodeToString(sig) {
			t.Fatalf("accepted a non-canonical encoding: %q / %q", e.Payload, e.Sig)
		}
		if sign && !bytes.Equal(payload, data) {
			t.Fatalf("opened %q, sealed %q", payload, data)
		}
		if kid == signer.Kid {
			re := mustSealBytes(signer, payload)
			p2, k2, err := ring.Open(re)
			if err != nil || k2 != kid || !bytes.Equal(p2, payload) {
				t.Fatalf("re-sealed payload does not round-trip: %v", err)
			}
			var e2 Envelope
			if err := json.Unmarshal(re, &e2); err != nil || e2.Sig != e.Sig {
				t.Fatalf("re-sealing gave another signature")
			}
		}
		for _, target := range []func() any{
			func() any { return new(Catalog) }, func() any { return new(Planogram) },
			func() any { return new(Command) }, func() any { return new(Ack) },
		} {
			checkDecodeStrict(t, payload, target)
		}
		// A planogram's lanes are judged after decoding: never a panic,
		// and a reason that does not echo the input.
		var p Planogram
		if DecodeStrict(payload, &p) == nil {
			for _, sh := range p.Shelves {
				if err := sh.ValidateLanes(); err != nil && len(err.Error()) > 512 {
					t.Fatalf("lanes refused with a reason of %d bytes", len(err.Error()))
				}
			}
		}
	})
}

// checkDecodeStrict holds DecodeStrict to encoding/json: anything it
// accepts encoding/json decodes to the same value, and the value encodes
// to JSON that DecodeStrict accepts again.
func checkDecodeStrict(t *testing.T, payload []byte, target func() any) {
	t.Helper()
	v := target()
	if err := DecodeStrict(payload, v); err != nil {
		if len(err.Error()) > 512 {
			t.Fatalf("%T: refusal reason of %d bytes", v, len(err.Error()))
		}
		return
	}
	plain := target()
	if err := json.Unmarshal(payload, plain); err != nil {
		t.Fatalf("%T: DecodeStrict accepted what encoding/json refuses: %v", v, err)
	}
	if !reflect.DeepEqual(v, plain) {
		t.Fatalf("%T: DecodeStrict read %+v, encoding/json %+v", v, v, plain)
	}
	again, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%T: accepted value does not encode: %v", v, err)
	}
	if err := DecodeStrict(again, target()); err != nil {
		t.Fatalf("%T: re-encoded value refused: %v\n%s", v, err, again)
	}
}
