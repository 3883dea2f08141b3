package msg

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bangfu/cabinet/internal/strict"
)

// Envelope errors; callers count and alarm on them.
var (
	ErrMalformed  = errors.New("msg: malformed envelope")
	ErrUnknownKey = errors.New("msg: unknown key id")
	ErrBadSig     = errors.New("msg: signature does not verify")
	ErrTooLarge   = errors.New("msg: payload too large")
)

// AlgEd25519 is the only signature algorithm of v1.
const AlgEd25519 = "Ed25519"

// Envelope is the signed wrapper of every message but the retained state.
type Envelope struct {
	V       int    `json:"v"`
	Kid     string `json:"kid"`
	Alg     string `json:"alg"`
	Payload string `json:"payload"`
	Sig     string `json:"sig"`
}

// b64 encodes; decoding is strict.Base64URL's, which accepts the
// canonical form only, so one signed message has exactly one envelope
// encoding.
var b64 = base64.RawURLEncoding

// Signer signs outgoing payloads under one key id.
type Signer struct {
	Kid string
	Key ed25519.PrivateKey
}

// Seal marshals body, signs the bytes and returns the envelope's JSON.
func (s Signer) Seal(body any) ([]byte, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("msg: marshal payload: %w", err)
	}
	return s.SealBytes(payload)
}

// SealBytes signs an already-encoded payload.
func (s Signer) SealBytes(payload []byte) ([]byte, error) {
	if len(s.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("msg: signer has no private key")
	}
	env := Envelope{V: 1, Kid: s.Kid, Alg: AlgEd25519,
		Payload: b64.EncodeToString(payload),
		Sig:     b64.EncodeToString(ed25519.Sign(s.Key, payload))}
	return json.Marshal(env)
}

// KeyRing maps key ids to the public keys trusted for them.
type KeyRing map[string]ed25519.PublicKey

// Open checks the envelope's form and signature and returns the payload's
// bytes and the key id that signed them. It changes nothing.
func (k KeyRing) Open(data []byte) (payload []byte, kid string, err error) {
	if len(data) > MaxPayloadBytes {
		return nil, "", ErrTooLarge
	}
	var env Envelope
	if err := DecodeStrict(data, &env); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// The kid is echoed in errors, logs and alarms: junk is cut short.
	if env.V != 1 || env.Alg != AlgEd25519 || env.Kid == "" || !ValidText(env.Kid, MaxIDBytes) {
		return nil, "", fmt.Errorf("%w: v=%d alg=%.16q kid=%.64q", ErrMalformed, env.V, env.Alg, env.Kid)
	}
	pub, ok := k[env.Kid]
	if !ok || len(pub) != ed25519.PublicKeySize {
		return nil, env.Kid, fmt.Errorf("%w: %q", ErrUnknownKey, env.Kid)
	}
	payload, err = strict.Base64URL(env.Payload)
	if err != nil {
		return nil, env.Kid, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	sig, err := strict.Base64URL(env.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, env.Kid, fmt.Errorf("%w: sig encoding", ErrMalformed)
	}
	if !ed25519.Verify(pub, payload, sig) {
		return nil, env.Kid, ErrBadSig
	}
	return payload, env.Kid, nil
}

// OpenInto opens the envelope and strictly decodes its payload into v.
func (k KeyRing) OpenInto(data []byte, v any) (kid string, err error) {
	payload, kid, err := k.Open(data)
	if err != nil {
		return kid, err
	}
	if err := DecodeStrict(payload, v); err != nil {
		return kid, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	return kid, nil
}

// DecodeStrict decodes one JSON value with strict.JSON's rules (no
// unknown, case-folded or duplicate keys, no trailing data, nesting at most
// MaxDepth, an object where v is a struct or map), after refusing input over
// MaxPayloadBytes with ErrTooLarge before any parsing. Its own refusals read
// "msg: …"; encoding/json's errors are returned as they are.
func DecodeStrict(data []byte, v any) error {
	if len(data) > MaxPayloadBytes {
		return ErrTooLarge
	}
	err := strict.JSON(data, v)
	if _, ok := errors.AsType[*strict.RuleError](err); ok {
		return fmt.Errorf("msg: %w", err)
	}
	return err
}

// MaxDepth is the deepest JSON nesting DecodeStrict accepts; v1 messages
// nest four levels at most.
const MaxDepth = strict.MaxDepth

// EncodeKey writes a public key as base64url without padding, the form
// used in configuration.
func EncodeKey(pub ed25519.PublicKey) string { return b64.EncodeToString(pub) }

// DecodeKey parses a public key written by EncodeKey.
func DecodeKey(s string) (ed25519.PublicKey, error) {
	b, err := strict.Base64URL(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("msg: bad public key %.64q", s)
	}
	return ed25519.PublicKey(b), nil
}
