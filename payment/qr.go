package payment

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bangfu/cabinet/internal/strict"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// QR defaults.
const (
	// DefaultQRBase is the QR_BASE of docs/contract.md.
	DefaultQRBase = "https://pay.bangfu.example/q"
	// DefaultQRRotate is qr_rotate_s: a new nonce is shown at least this
	// often.
	DefaultQRRotate = 30 * time.Second
	// QRFutureSkew is how far in the future a QR timestamp may be before
	// VerifyQR refuses it (the cabinet's clock may run a little fast).
	QRFutureSkew = 5 * time.Second
	// nonceBytes gives 96 bits of randomness in 16 base64url characters.
	nonceBytes = 12
)

// QR errors.
var (
	// ErrStaleQR means a nonce is not the current or previous one, was
	// already used, or a QR payload is too old or from the future.
	ErrStaleQR = errors.New("payment: stale qr")
	// ErrBadQR means a QR payload is malformed.
	ErrBadQR = errors.New("payment: malformed qr")
	// ErrQRSignature means a QR payload's signature does not verify.
	ErrQRSignature = errors.New("payment: qr signature does not verify")
)

// b64 encodes; decoding is strict.Base64URL's, which accepts the
// canonical form only, so a payload has one spelling only.
var b64 = base64.RawURLEncoding

// QROpts configures NewQR; zero fields take the defaults.
type QROpts struct {
	// Base is QR_BASE, an absolute http(s) URL without query or fragment;
	// default DefaultQRBase.
	Base string
	// Rotate is qr_rotate_s; default DefaultQRRotate.
	Rotate time.Duration
	// Rand is the nonce source; default crypto/rand.Reader.
	Rand io.Reader
}

type nonce struct {
	value   string // "" means none
	born    time.Time
	used    bool
	payload string
}

// QR is the cabinet's rotating QR code: a random nonce signed with the
// cabinet key, replaced at least every Rotate and after every session. A
// nonce is accepted while it is the current one or the one shown just
// before it, once, and never later than 2·Rotate after it was drawn — so a
// photographed code soon stops working.
//
// Time is passed in by the caller; QR never reads the clock. It is safe for
// concurrent use.
type QR struct {
	cabinet string
	key     ed25519.PrivateKey
	base    string
	rotate  time.Duration
	rand    io.Reader

	mu        sync.Mutex
	cur, prev nonce
}

// NewQR makes the QR code of cabinetID signed with key. No nonce is drawn
// until the first Current, Nonce or Rotate.
func NewQR(cabinetID string, key ed25519.PrivateKey, o *QROpts) (*QR, error) {
	if !msg.ValidCabinetID(cabinetID) {
		return nil, fmt.Errorf("payment: qr: bad cabinet id %q", cabinetID)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("payment: qr: private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	q := &QR{cabinet: cabinetID, key: key, base: DefaultQRBase, rotate: DefaultQRRotate, rand: rand.Reader}
	if o != nil {
		if o.Base != "" {
			q.base = o.Base
		}
		if o.Rotate < 0 {
			return nil, fmt.Errorf("payment: qr: negative rotate %v", o.Rotate)
		}
		if o.Rotate > 0 {
			q.rotate = o.Rotate
		}
		if o.Rand != nil {
			q.rand = o.Rand
		}
	}
	u, err := url.Parse(q.base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(q.base, "?#") {
		return nil, fmt.Errorf("payment: qr: base %q is not an http(s) URL without query", q.base)
	}
	return q, nil
}

// Current returns the payload to show at now, drawing a new nonce when the
// current one is Rotate old. The payload stays the same for the nonce's
// life, so the display only redraws when it changes. It returns "" if the
// random source fails (the caller shows no code; the next call retries).
func (q *QR) Current(now time.Time) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.advance(now)
	return q.cur.payload
}

// Due is when the current nonce reaches Rotate and Current draws a new
// one; zero before the first nonce.
func (q *QR) Due() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cur.value == "" {
		return time.Time{}
	}
	return q.cur.born.Add(q.rotate)
}

// Rotate forces a new nonce, as after every session, and returns the new
// payload; the replaced nonce becomes the previous one.
func (q *QR) Rotate(now time.Time) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rotateLocked(now)
	return q.cur.payload
}

// Nonce returns the current nonce at now, rotating like Current.
func (q *QR) Nonce(now time.Time) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.advance(now)
	return q.cur.value
}

// Use accepts nonce if it is the current or the previous one and has not
// been used; it then marks it used and rotates. Anything else is an error
// wrapping ErrStaleQR, and changes nothing but the time-driven rotation.
func (q *QR) Use(n string, now time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.advance(now)
	var hit *nonce
	switch {
	case n == "":
		return fmt.Errorf("%w: empty nonce", ErrStaleQR)
	case n == q.cur.value:
		hit = &q.cur
	case n == q.prev.value:
		hit = &q.prev
	default:
		return fmt.Errorf("%w: nonce %.32q is not shown now", ErrStaleQR, n)
	}
	if hit.used {
		return fmt.Errorf("%w: nonce %q already used", ErrStaleQR, n)
	}
	hit.used = true
	q.rotateLocked(now)
	return nil
}

// advance applies the time-driven rotation. Callers may call rarely, so it
// also enforces the 2·Rotate bound on the previous nonce by itself, and a
// clock that jumped back by Rotate or more counts as a rotation too.
func (q *QR) advance(now time.Time) {
	if q.cur.value == "" || tooOld(q.cur, now, q.rotate) {
		q.rotateLocked(now)
		return
	}
	q.prune(now)
}

func tooOld(n nonce, now time.Time, max time.Duration) bool {
	age := now.Sub(n.born)
	return age >= max || age <= -max
}

func (q *QR) prune(now time.Time) {
	if q.prev.value != "" && tooOld(q.prev, now, 2*q.rotate) {
		q.prev = nonce{}
	}
}

func (q *QR) rotateLocked(now time.Time) {
	if q.cur.value != "" {
		q.prev = q.cur
	}
	// Fail closed: with no fresh randomness there is no current nonce.
	q.cur = nonce{}
	var buf [nonceBytes]byte
	if _, err := io.ReadFull(q.rand, buf[:]); err == nil {
		v := b64.EncodeToString(buf[:])
		unix := now.Unix()
		sig := ed25519.Sign(q.key, qrMessage(q.cabinet, v, unix))
		q.cur = nonce{value: v, born: now, payload: q.base + "?c=" + q.cabinet + "&n=" + v +
			"&t=" + strconv.FormatInt(unix, 10) + "&s=" + b64.EncodeToString(sig)}
	}
	q.prune(now)
}

// qrMessage is the signed text C|NONCE|UNIX.
func qrMessage(cabinet, nonce string, unix int64) []byte {
	b := make([]byte, 0, len(cabinet)+len(nonce)+22)
	b = append(b, cabinet...)
	b = append(b, '|')
	b = append(b, nonce...)
	b = append(b, '|')
	return strconv.AppendInt(b, unix, 10)
}

// ParsedQR is the content of a QR payload.
type ParsedQR struct {
	Cabinet string
	Nonce   string
	Unix    int64
	Sig     []byte
}

// ParseQR reads a payload QR_BASE?c=C&n=NONCE&t=UNIX&s=SIG without checking
// the signature. The base is not checked; each of c, n, t, s must appear
// exactly once and nothing else; t must be canonical decimal so the signed
// text is unique, and n and s canonical base64url so the payload is.
func ParseQR(s string) (ParsedQR, error) {
	var p ParsedQR
	base, query, ok := strings.Cut(s, "?")
	if !ok || base == "" {
		return p, fmt.Errorf("%w: no query", ErrBadQR)
	}
	var have [4]bool
	for field := range strings.SplitSeq(query, "&") {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return p, fmt.Errorf("%w: field %.32q", ErrBadQR, field)
		}
		i := strings.Index("cnts", k)
		if len(k) != 1 || i < 0 {
			return p, fmt.Errorf("%w: unknown field %.32q", ErrBadQR, k)
		}
		if have[i] {
			return p, fmt.Errorf("%w: duplicate field %q", ErrBadQR, k)
		}
		have[i] = true
		switch k {
		case "c":
			if !msg.ValidCabinetID(v) {
				return p, fmt.Errorf("%w: cabinet %.64q", ErrBadQR, v)
			}
			p.Cabinet = v
		case "n":
			// 16 characters are 96 bits; the cap keeps junk short.
			if b, err := strict.Base64URL(v); err != nil || len(b) < nonceBytes || len(v) > 64 {
				return p, fmt.Errorf("%w: nonce %.64q", ErrBadQR, v)
			}
			p.Nonce = v
		case "t":
			u, err := strconv.ParseInt(v, 10, 64)
			if err != nil || u < 0 || strconv.FormatInt(u, 10) != v {
				return p, fmt.Errorf("%w: time %.32q", ErrBadQR, v)
			}
			p.Unix = u
		case "s":
			b, err := strict.Base64URL(v)
			if err != nil || len(b) != ed25519.SignatureSize {
				return p, fmt.Errorf("%w: signature encoding", ErrBadQR)
			}
			p.Sig = b
		}
	}
	if have != [4]bool{true, true, true, true} {
		return p, fmt.Errorf("%w: missing field", ErrBadQR)
	}
	return p, nil
}

// VerifyQR is the platform's check of a scanned payload: it must parse, be
// signed by pub, be at most maxAge old at now and at most QRFutureSkew in
// the future. maxAge ≤ 0 means 2·DefaultQRRotate, the longest a nonce
// lives. It says nothing about whether the nonce is still unused; the
// cabinet decides that when the unlock arrives.
func VerifyQR(s string, pub ed25519.PublicKey, now time.Time, maxAge time.Duration) (ParsedQR, error) {
	p, err := ParseQR(s)
	if err != nil {
		return p, err
	}
	if len(pub) != ed25519.PublicKeySize {
		return p, fmt.Errorf("payment: qr: public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if !ed25519.Verify(pub, qrMessage(p.Cabinet, p.Nonce, p.Unix), p.Sig) {
		return p, ErrQRSignature
	}
	if maxAge <= 0 {
		maxAge = 2 * DefaultQRRotate
	}
	// Compare in whole seconds so a huge t cannot overflow a Duration.
	nowS := now.Unix()
	switch {
	case p.Unix > nowS && p.Unix-nowS > int64(QRFutureSkew/time.Second):
		return p, fmt.Errorf("%w: issued %ds in the future", ErrStaleQR, p.Unix-nowS)
	case p.Unix < nowS && now.Sub(time.Unix(p.Unix, 0)) > maxAge:
		return p, fmt.Errorf("%w: %v old, max %v", ErrStaleQR, now.Sub(time.Unix(p.Unix, 0)).Truncate(time.Second), maxAge)
	}
	return p, nil
}
