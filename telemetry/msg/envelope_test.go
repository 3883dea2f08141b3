package msg

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func keys(t *testing.T) (Signer, KeyRing) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Signer{Kid: "plat-test", Key: priv}, KeyRing{"plat-test": pub}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	s, ring := keys(t)
	ack := Ack{SalesUptoSeq: 118, At: At(time.Date(2026, 11, 26, 3, 4, 5, 678_900_000, time.UTC))}
	data, err := s.Seal(ack)
	if err != nil {
		t.Fatal(err)
	}
	var env Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	if env.V != 1 || env.Alg != "Ed25519" || env.Kid != "plat-test" || strings.ContainsAny(env.Payload+env.Sig, "=+/") {
		t.Fatalf("envelope form: %+v", env)
	}
	var got Ack
	kid, err := ring.OpenInto(data, &got)
	if err != nil || kid != "plat-test" {
		t.Fatalf("open: kid %q err %v", kid, err)
	}
	if got.SalesUptoSeq != 118 || !got.At.Equal(ack.At.Time) {
		t.Fatalf("got %+v", got)
	}
	payload, _, _ := ring.Open(data)
	if !strings.Contains(string(payload), `"at":"2026-11-26T03:04:05.678Z"`) {
		t.Fatalf("timestamp not RFC 3339 UTC millis: %s", payload)
	}
}

func TestEnvelopeRefusals(t *testing.T) {
	s, ring := keys(t)
	_, other := keys(t)
	good, err := s.Seal(Ack{SalesUptoSeq: 1, At: At(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	var env Envelope
	if err := json.Unmarshal(good, &env); err != nil {
		t.Fatal(err)
	}
	mut := func(f func(e *Envelope)) []byte {
		e := env
		f(&e)
		b, _ := json.Marshal(e)
		return b
	}
	tampered := []byte(`{"sales_upto_seq":999,"at":"2026-01-01T00:00:00.000Z"}`)
	tests := []struct {
		name string
		data []byte
		ring KeyRing
		want error
	}{
		{"not json", []byte("{"), ring, ErrMalformed},
		{"trailing data", append(append([]byte{}, good...), []byte(" {}")...), ring, ErrMalformed},
		{"unknown field", []byte(strings.Replace(string(good), `{"v":1`, `{"v":1,"x":2`, 1)), ring, ErrMalformed},
		{"version 2", mut(func(e *Envelope) { e.V = 2 }), ring, ErrMalformed},
		{"other alg", mut(func(e *Envelope) { e.Alg = "HS256" }), ring, ErrMalformed},
		{"unknown kid", mut(func(e *Envelope) { e.Kid = "plat-x" }), ring, ErrUnknownKey},
		{"payload swapped", mut(func(e *Envelope) { e.Payload = b64.EncodeToString(tampered) }), ring, ErrBadSig},
		{"sig not base64", mut(func(e *Envelope) { e.Sig = "!!" }), ring, ErrMalformed},
		{"sig short", mut(func(e *Envelope) { e.Sig = e.Sig[:20] }), ring, ErrMalformed},
		{"other key same kid", good, KeyRing{"plat-test": other["plat-test"]}, ErrBadSig},
		{"oversize", make([]byte, MaxPayloadBytes+1), ring, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a Ack
			_, err := tc.ring.OpenInto(tc.data, &a)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if a.SalesUptoSeq != 0 {
				t.Fatalf("refused message still decoded into the target: %+v", a)
			}
		})
	}
}

func TestPayloadUnknownFieldRefused(t *testing.T) {
	s, ring := keys(t)
	data, err := s.SealBytes([]byte(`{"sales_upto_seq":3,"at":"2026-11-26T00:00:00.000Z","extra":1}`))
	if err != nil {
		t.Fatal(err)
	}
	var a Ack
	if _, err := ring.OpenInto(data, &a); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err %v, want ErrMalformed", err)
	}
}

func TestTopics(t *testing.T) {
	tp := Topics{Prefix: DefaultPrefix, Cabinet: "NM-150102-0007"}
	if tp.Sale() != "bangfu/v1/c/NM-150102-0007/sale" || tp.Catalog() != "bangfu/v1/catalog" {
		t.Fatalf("topics: %s %s", tp.Sale(), tp.Catalog())
	}
	for _, tc := range []struct {
		topic string
		ok    bool
	}{
		{"bangfu/v1/c/NM-150102-0007/sale", true},
		{"bangfu/v1/c/NM-150102-0007/sale/x", false},
		{"bangfu/v1/c/NM_1/sale", false},
		{"bangfu/v2/c/NM-1/sale", false},
		{"bangfu/v1/catalog", false},
	} {
		if _, _, ok := ParseCabinetTopic(DefaultPrefix, tc.topic); ok != tc.ok {
			t.Errorf("%s: ok=%v want %v", tc.topic, ok, tc.ok)
		}
	}
}

func TestNewIDUniqueAndOrdered(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	base := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	for i := range 2000 {
		id := NewID(base.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 26 || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		if id <= prev {
			t.Fatalf("ids not time-ordered: %q after %q", id, prev)
		}
		seen[id], prev = true, id
	}
}

func BenchmarkOpen(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, ring := Signer{Kid: "k", Key: priv}, KeyRing{"k": pub}
	data, _ := s.Seal(Command{ID: "cmd-1", Type: CmdUnlock, CabinetID: "NM-150102-0007", IssuedAt: At(time.Now()), ExpiresAt: At(time.Now().Add(time.Minute)), SessionID: "S-1", QRNonce: "abcdefghijklmnop", Buyer: &Buyer{Ref: "u1", Kind: "person"}})
	b.ReportAllocs()
	for b.Loop() {
		var c Command
		if _, err := ring.OpenInto(data, &c); err != nil {
			b.Fatal(err)
		}
	}
}
