package msg

import (
	"bytes"
	"crypto/ed25519"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
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

var (
	b64 = base64.RawURLEncoding
	// b64Strict refuses non-zero padding bits; decode64 also refuses the
	// CR and LF that Go's decoder skips. With both, one signed message
	// has exactly one envelope encoding.
	b64Strict = base64.RawURLEncoding.Strict()
)

// decode64 decodes the canonical unpadded base64url form only.
func decode64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line break in base64")
	}
	return b64Strict.DecodeString(s)
}

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
	payload, err = decode64(env.Payload)
	if err != nil {
		return nil, env.Kid, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	sig, err := decode64(env.Sig)
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
// data, oversize input, nesting deeper than MaxDepth and duplicate object
// keys.
//
// encoding/json alone keeps the last of two equal keys and matches a
// struct's field names case-insensitively, so {"price_fen":1,
// "PRICE_FEN":2990} would mean 2990 to the cabinet and possibly 1 to a
// case-sensitive reader that checked it before it was signed. So where the
// target is a struct, a key must be one of its JSON field names exactly;
// in maps and in values decoded by their own UnmarshalJSON (json.RawMessage)
// keys must only be unique.
func DecodeStrict(data []byte, v any) error {
	if len(data) > MaxPayloadBytes {
		return ErrTooLarge
	}
	if err := checkKeys(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// MaxDepth is the deepest JSON nesting DecodeStrict accepts; v1 messages
// nest four levels at most.
const MaxDepth = 32

// checkKeys walks the single JSON value in data along the Go type t.
func checkKeys(data []byte, t reflect.Type) error {
	if len(bytes.TrimLeft(data, " \t\r\n")) == 0 {
		return errors.New("msg: no JSON value")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // a number too big for float64 is the decoder's to judge, not ours
	if err := walk(dec, t, 0); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("msg: JSON value cut short: %w", io.ErrUnexpectedEOF)
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("msg: trailing data after JSON value")
	}
	return nil
}

func walk(dec *json.Decoder, t reflect.Type, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	t = shape(t)
	delim, ok := tok.(json.Delim)
	if depth == 0 && delim != '{' && t != nil && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map) {
		// A message is an object; a bare null would decode to nothing
		// at all and look like a message with every field missing.
		return errors.New("msg: want a JSON object")
	}
	if !ok {
		return nil // a scalar: its type is the decoder's business
	}
	if depth >= MaxDepth {
		return fmt.Errorf("msg: JSON nested deeper than %d levels", MaxDepth)
	}
	var elem reflect.Type
	if delim == '[' {
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := walk(dec, elem, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	}
	var fields map[string]reflect.Type
	switch {
	case t != nil && t.Kind() == reflect.Struct:
		fields = jsonFields(t)
	case t != nil && t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := tok.(string) // the decoder only yields string keys
		if seen[k] {
			return fmt.Errorf("msg: duplicate key %.64q", k)
		}
		seen[k] = true
		next := elem
		if fields != nil {
			ft, ok := fields[k]
			if !ok {
				return fmt.Errorf("msg: unknown field %.64q", k)
			}
			next = ft
		}
		if err := walk(dec, next, depth+1); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// shape is t without pointers, or nil when t's JSON form is not a plain
// struct, map or list: a type with its own unmarshaler (Time,
// json.RawMessage), an interface, no type at all.
func shape(t reflect.Type) reflect.Type {
	for t != nil {
		for _, u := range []reflect.Type{jsonUnmarshaler, textUnmarshaler} {
			if t.Implements(u) || reflect.PointerTo(t).Implements(u) {
				return nil
			}
		}
		switch t.Kind() {
		case reflect.Pointer:
			t = t.Elem()
		case reflect.Interface:
			return nil
		default:
			return t
		}
	}
	return nil
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields maps the JSON names of struct type t's fields, as
// encoding/json names them, to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	addFields(m, t, 0)
	fieldCache.Store(t, m)
	return m
}

func addFields(m map[string]reflect.Type, t reflect.Type, depth int) {
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	// Promoted fields lose to the struct's own; depth stops a cycle.
	for _, et := range embedded {
		if depth >= MaxDepth {
			break
		}
		inner := map[string]reflect.Type{}
		addFields(inner, et, depth+1)
		for k, v := range inner {
			if _, ok := m[k]; !ok {
				m[k] = v
			}
		}
	}
}

// EncodeKey writes a public key as base64url without padding, the form
// used in configuration.
func EncodeKey(pub ed25519.PublicKey) string { return b64.EncodeToString(pub) }

// DecodeKey parses a public key written by EncodeKey.
func DecodeKey(s string) (ed25519.PublicKey, error) {
	b, err := decode64(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("msg: bad public key %.64q", s)
	}
	return ed25519.PublicKey(b), nil
}
