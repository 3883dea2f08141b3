package payment

import (
	"crypto/ed25519"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const cab = "NM-150102-0007"

func testKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s)
}

// countReader yields distinct bytes on every read; fail makes it error.
type countReader struct {
	n    byte
	fail bool
}

func (r *countReader) Read(p []byte) (int, error) {
	if r.fail {
		return 0, errors.New("entropy gone")
	}
	for i := range p {
		r.n++
		p[i] = r.n
	}
	return len(p), nil
}

func newTestQR(t testing.TB, o *QROpts) *QR {
	t.Helper()
	q, err := NewQR(cab, testKey(1), o)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestNewQRErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
		key  ed25519.PrivateKey
		o    *QROpts
	}{
		{"empty cabinet", "", testKey(1), nil},
		{"cabinet with separator", "NM|1", testKey(1), nil},
		{"cabinet with query chars", "NM&x=1", testKey(1), nil},
		{"short key", cab, testKey(1)[:32], nil},
		{"nil key", cab, nil, nil},
		{"base with query", cab, testKey(1), &QROpts{Base: "https://pay.example/q?x=1"}},
		{"base with fragment", cab, testKey(1), &QROpts{Base: "https://pay.example/q#x"}},
		{"relative base", cab, testKey(1), &QROpts{Base: "/q"}},
		{"other scheme", cab, testKey(1), &QROpts{Base: "ftp://pay.example/q"}},
		{"negative rotate", cab, testKey(1), &QROpts{Rotate: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if q, err := NewQR(tc.id, tc.key, tc.o); err == nil || !strings.HasPrefix(err.Error(), "payment: ") {
				t.Fatalf("NewQR = %v, %v; want a payment: error", q, err)
			}
		})
	}
}

var payloadRE = regexp.MustCompile(`^https://pay\.bangfu\.example/q\?c=([A-Za-z0-9-]+)&n=([A-Za-z0-9_-]{16})&t=([0-9]+)&s=([A-Za-z0-9_-]{86})$`)

func TestQRPayload(t *testing.T) {
	key := testKey(1)
	q := newTestQR(t, nil) // defaults: base, 30 s, crypto/rand
	s := q.Current(t0)
	m := payloadRE.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("payload %q does not match %v", s, payloadRE)
	}
	if m[1] != cab || m[2] != q.Nonce(t0) || m[3] != strconv.FormatInt(t0.Unix(), 10) {
		t.Errorf("payload fields c=%q n=%q t=%q; want %q %q %d", m[1], m[2], m[3], cab, q.Nonce(t0), t0.Unix())
	}
	sig, err := b64.DecodeString(m[4])
	if err != nil {
		t.Fatal(err)
	}
	signed := []byte(m[1] + "|" + m[2] + "|" + m[3])
	if !ed25519.Verify(key.Public().(ed25519.PublicKey), signed, sig) {
		t.Error("signature does not verify over C|NONCE|UNIX with the cabinet's public key")
	}
	if ed25519.Verify(testKey(2).Public().(ed25519.PublicKey), signed, sig) {
		t.Error("signature verifies with another key")
	}
	if raw, _ := b64.DecodeString(m[2]); len(raw)*8 < 96 {
		t.Errorf("nonce has %d bits, want ≥ 96", len(raw)*8)
	}
	if got := q.Current(t0.Add(29 * time.Second)); got != s {
		t.Errorf("payload changed within the rotation period:\n%s\n%s", s, got)
	}
}

// The payload's length is fixed by docs/contract.md: base, "?c=", C, "&n=", 16
// nonce characters (96 bits), "&t=", 10 digits until 2286, "&s=" and 86
// signature characters (64 bytes) — len(base)+len(C)+124. With the default
// base that is 152+len(C) bytes, so 140 is out of reach for any cabinet id;
// what the test pins is that nothing else creeps in: 166 bytes for a
// 14-character id (QR version 8-L / 9-M in byte mode) and 216 for the
// longest (64-character) id.
func TestQRPayloadLength(t *testing.T) {
	for _, id := range []string{cab, strings.Repeat("A", 64), "X"} {
		t.Run(strconv.Itoa(len(id)), func(t *testing.T) {
			q, err := NewQR(id, testKey(1), nil)
			if err != nil {
				t.Fatal(err)
			}
			s := q.Current(t0)
			if want := len(DefaultQRBase) + len(id) + 124; len(s) != want {
				t.Errorf("payload is %d bytes, want %d: %s", len(s), want, s)
			}
			if id == cab && len(s) > 166 {
				t.Errorf("payload for %s is %d bytes, want ≤ 166", id, len(s))
			}
		})
	}
}

func TestQRRotation(t *testing.T) {
	const R = 30 * time.Second
	type step struct {
		at      time.Duration // since t0
		do      string        // "show", "rotate", "use"
		nonce   int           // for use: index of a nonce shown earlier
		wantErr bool          // for use
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"current accepted once", []step{
			{0, "show", 0, false}, {1 * time.Second, "use", 0, false}, {2 * time.Second, "use", 0, true}}},
		{"stable within period", []step{
			{0, "show", 0, false}, {R - time.Nanosecond, "show", 0, false}, {R - time.Nanosecond, "use", 0, false}}},
		{"rotates after period, previous accepted once", []step{
			{0, "show", 0, false}, {R, "show", 0, false}, {R + time.Second, "use", 0, false}, {R + time.Second, "use", 0, true}}},
		{"two rotations old refused (photographed)", []step{
			{0, "show", 0, false}, {R, "show", 0, false}, {2 * R, "show", 0, false}, {2 * R, "use", 0, true}, {2 * R, "use", 2, false}}},
		{"forced rotate keeps previous", []step{
			{0, "show", 0, false}, {time.Second, "rotate", 0, false}, {2 * time.Second, "use", 0, false}, {2 * time.Second, "use", 1, false}}},
		{"two forced rotations drop it", []step{
			{0, "show", 0, false}, {time.Second, "rotate", 0, false}, {2 * time.Second, "rotate", 0, false}, {3 * time.Second, "use", 0, true}}},
		{"using the previous still leaves the one on display", []step{
			{0, "show", 0, false}, {R, "show", 0, false}, {R, "use", 0, false}, {R, "use", 1, false}}},
		{"use rotates, so the next scan sees a new code", []step{
			{0, "show", 0, false}, {time.Second, "use", 0, false}, {time.Second, "show", 0, false}, {time.Second, "use", 1, false}}},
		// Nobody asked for the code for a while: the nonce still dies 2·R
		// after it was drawn, not 2·R after the next call.
		{"lazy: previous within 2R accepted", []step{
			{0, "show", 0, false}, {2*R - time.Second, "use", 0, false}}},
		{"lazy: 2R old refused", []step{
			{0, "show", 0, false}, {2 * R, "use", 0, true}}},
		{"lazy: long idle refused", []step{
			{0, "show", 0, false}, {10 * time.Minute, "use", 0, true}}},
		{"clock jumped back rotates", []step{
			{0, "show", 0, false}, {-R, "show", 0, false}, {-R, "use", 1, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newTestQR(t, &QROpts{Rand: &countReader{}})
			var shown []string
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				switch s.do {
				case "show", "rotate":
					p := q.Current(now)
					if s.do == "rotate" {
						p = q.Rotate(now)
					}
					n := q.Nonce(now)
					if !strings.Contains(p, "&n="+n+"&") {
						t.Fatalf("step %d: payload %q does not carry nonce %q", i, p, n)
					}
					if len(shown) == 0 || shown[len(shown)-1] != n {
						shown = append(shown, n)
					}
				case "use":
					err := q.Use(shown[s.nonce], now)
					if s.wantErr != (err != nil) || (err != nil && !errors.Is(err, ErrStaleQR)) {
						t.Fatalf("step %d: Use(nonce %d) at %v = %v, want error %v", i, s.nonce, s.at, err, s.wantErr)
					}
				}
			}
		})
	}
}

func TestQRUseRefusesJunk(t *testing.T) {
	q := newTestQR(t, nil)
	if err := q.Use("AAAAAAAAAAAAAAAA", t0); !errors.Is(err, ErrStaleQR) {
		t.Errorf("Use before any code was shown = %v, want ErrStaleQR", err)
	}
	q.Current(t0)
	for _, n := range []string{"", "AAAAAAAAAAAAAAAA", q.Nonce(t0) + "x"} {
		if err := q.Use(n, t0); !errors.Is(err, ErrStaleQR) {
			t.Errorf("Use(%q) = %v, want ErrStaleQR", n, err)
		}
	}
}

func TestQRRandFailure(t *testing.T) {
	r := &countReader{}
	q := newTestQR(t, &QROpts{Rand: r})
	first := q.Nonce(t0)
	r.fail = true
	if p := q.Rotate(t0); p != "" {
		t.Errorf("Rotate with a failing source = %q, want no code", p)
	}
	if n := q.Nonce(t0); n != "" {
		t.Errorf("Nonce with a failing source = %q, want none", n)
	}
	// The code shown just before stays acceptable, like any previous one.
	if err := q.Use(first, t0); err != nil {
		t.Errorf("Use(previous) = %v", err)
	}
	r.fail = false
	if p := q.Current(t0.Add(time.Second)); p == "" {
		t.Error("Current did not recover once the source works")
	}
}

func TestQRConcurrentUse(t *testing.T) {
	q := newTestQR(t, nil)
	n := q.Nonce(t0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 16 {
		wg.Go(func() {
			now := t0.Add(time.Duration(i) * time.Millisecond)
			q.Current(now)
			if q.Use(n, now) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("nonce accepted %d times, want exactly once", ok)
	}
}

func TestParseQR(t *testing.T) {
	q := newTestQR(t, nil)
	good := q.Current(t0)
	p, err := ParseQR(good)
	if err != nil {
		t.Fatal(err)
	}
	if p.Cabinet != cab || p.Nonce != q.Nonce(t0) || p.Unix != t0.Unix() || len(p.Sig) != ed25519.SignatureSize {
		t.Errorf("ParseQR = %+v", p)
	}
	m := payloadRE.FindStringSubmatch(good)
	c, n, ts, s := m[1], m[2], m[3], m[4]
	base := DefaultQRBase + "?"
	for _, tc := range []struct{ name, in string }{
		{"no query", DefaultQRBase},
		{"no base", "?c=" + c + "&n=" + n + "&t=" + ts + "&s=" + s},
		{"missing s", base + "c=" + c + "&n=" + n + "&t=" + ts},
		{"duplicate n", base + "c=" + c + "&n=" + n + "&n=" + n + "&t=" + ts + "&s=" + s},
		{"extra field", base + "c=" + c + "&n=" + n + "&t=" + ts + "&s=" + s + "&x=1"},
		{"field without =", base + "c=" + c + "&n=" + n + "&t=" + ts + "&s"},
		{"bad cabinet", base + "c=NM%7C1&n=" + n + "&t=" + ts + "&s=" + s},
		{"short nonce", base + "c=" + c + "&n=AAAA&t=" + ts + "&s=" + s},
		{"padded nonce", base + "c=" + c + "&n=" + n + "==&t=" + ts + "&s=" + s},
		{"negative time", base + "c=" + c + "&n=" + n + "&t=-" + ts + "&s=" + s},
		{"leading zero time", base + "c=" + c + "&n=" + n + "&t=0" + ts + "&s=" + s},
		{"time overflow", base + "c=" + c + "&n=" + n + "&t=99999999999999999999&s=" + s},
		{"short sig", base + "c=" + c + "&n=" + n + "&t=" + ts + "&s=" + s[:80]},
		{"std base64 sig", base + "c=" + c + "&n=" + n + "&t=" + ts + "&s=" + s + "=="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := ParseQR(tc.in); !errors.Is(err, ErrBadQR) {
				t.Fatalf("ParseQR(%q) = %+v, %v; want ErrBadQR", tc.in, p, err)
			}
		})
	}
	reordered := base + "s=" + s + "&t=" + ts + "&n=" + n + "&c=" + c
	if p2, err := ParseQR(reordered); err != nil || p2.Nonce != p.Nonce {
		t.Errorf("ParseQR(reordered) = %+v, %v", p2, err)
	}
}

func TestVerifyQR(t *testing.T) {
	key := testKey(1)
	pub := key.Public().(ed25519.PublicKey)
	q := newTestQR(t, nil)
	good := q.Current(t0)
	m := payloadRE.FindStringSubmatch(good)
	c, n, ts, s := m[1], m[2], m[3], m[4]
	base := DefaultQRBase + "?"
	flip := func(v string) string { // change one character, keep the alphabet
		b := []byte(v)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}
	for _, tc := range []struct {
		name    string
		in      string
		pub     ed25519.PublicKey
		now     time.Time
		maxAge  time.Duration
		wantErr error
	}{
		{"good", good, pub, t0.Add(10 * time.Second), time.Minute, nil},
		{"good at max age", good, pub, t0.Add(time.Minute), time.Minute, nil},
		{"default max age", good, pub, t0.Add(2 * DefaultQRRotate), 0, nil},
		{"clock 5s behind", good, pub, t0.Add(-QRFutureSkew), time.Minute, nil},
		{"other base still verifies", "https://elsewhere.example/x?" + good[len(base):], pub, t0, time.Minute, nil},
		{"tampered nonce", base + "c=" + c + "&n=" + flip(n) + "&t=" + ts + "&s=" + s, pub, t0, time.Minute, ErrQRSignature},
		{"tampered cabinet", base + "c=NM-150102-0008&n=" + n + "&t=" + ts + "&s=" + s, pub, t0, time.Minute, ErrQRSignature},
		{"tampered time", base + "c=" + c + "&n=" + n + "&t=" + strconv.FormatInt(t0.Unix()+20, 10) + "&s=" + s, pub, t0, time.Minute, ErrQRSignature},
		{"tampered sig", base + "c=" + c + "&n=" + n + "&t=" + ts + "&s=" + flip(s), pub, t0, time.Minute, ErrQRSignature},
		{"other key", good, testKey(2).Public().(ed25519.PublicKey), t0, time.Minute, ErrQRSignature},
		{"too old", good, pub, t0.Add(time.Minute + time.Second), time.Minute, ErrStaleQR},
		{"default max age exceeded", good, pub, t0.Add(2*DefaultQRRotate + time.Second), 0, ErrStaleQR},
		{"future", good, pub, t0.Add(-QRFutureSkew - time.Second), time.Minute, ErrStaleQR},
		{"malformed", good[:len(good)-3], pub, t0, time.Minute, ErrBadQR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := VerifyQR(tc.in, tc.pub, tc.now, tc.maxAge)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("VerifyQR = %+v, %v; want %v", p, err, tc.wantErr)
			}
			if err == nil && (p.Cabinet != cab || p.Nonce != n) {
				t.Errorf("VerifyQR = %+v", p)
			}
		})
	}
	if _, err := VerifyQR(good, pub[:16], t0, 0); err == nil {
		t.Error("VerifyQR with a short public key succeeded")
	}
}

func BenchmarkVerifyQR(b *testing.B) {
	q := newTestQR(b, nil)
	s := q.Current(t0)
	pub := testKey(1).Public().(ed25519.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyQR(s, pub, t0, 0); err != nil {
			b.Fatal(err)
		}
	}
}

var _ io.Reader = (*countReader)(nil)
