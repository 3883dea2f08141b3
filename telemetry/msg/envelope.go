package msg

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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
	if env.V != 1 || env.Alg != AlgEd25519 || env.Kid == "" {
		return nil, "", fmt.Errorf("%w: v=%d alg=%q kid=%q", ErrMalformed, env.V, env.Alg, env.Kid)
	}
	pub, ok := k[env.Kid]
	if !ok || len(pub) != ed25519.PublicKeySize {
		return nil, env.Kid, fmt.Errorf("%w: %q", ErrUnknownKey, env.Kid)
	}
	payload, err = b64.DecodeString(env.Payload)
	if err != nil {
		return nil, env.Kid, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	sig, err := b64.DecodeString(env.Sig)
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

// DecodeStrict decodes one JSON value, refusing unknown fields, trailing
// data and oversize input.
func DecodeStrict(data []byte, v any) error {
	if len(data) > MaxPayloadBytes {
		return ErrTooLarge
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// EncodeKey writes a public key as base64url without padding, the form
// used in configuration.
func EncodeKey(pub ed25519.PublicKey) string { return b64.EncodeToString(pub) }

// DecodeKey parses a public key written by EncodeKey.
func DecodeKey(s string) (ed25519.PublicKey, error) {
	b, err := b64.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("msg: bad public key %q", s)
	}
	return ed25519.PublicKey(b), nil
}
