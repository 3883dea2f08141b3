package strict

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
)

// MaxDepth is the deepest JSON nesting JSON accepts.
const MaxDepth = 32

// RuleError is a refusal by one of JSON's own rules (duplicate or unknown
// key, trailing data, nesting, not an object), as opposed to a syntax or
// type error of encoding/json, which JSON returns as it is.
type RuleError struct {
	reason string
	err    error
}

func (e *RuleError) Error() string { return e.reason }

// Unwrap returns the underlying error, if any (io.ErrUnexpectedEOF for a
// value cut short).
func (e *RuleError) Unwrap() error { return e.err }

func ruleErr(format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	return &RuleError{reason: err.Error(), err: errors.Unwrap(err)}
}

// JSON decodes one JSON value into v, refusing unknown fields, trailing
// data, nesting deeper than MaxDepth, a top-level value that is not an
// object where v is a struct or map, and duplicate object keys. It has no
// size cap: callers refuse oversize input before calling it.
//
// encoding/json alone keeps the last of two equal keys and matches a
// struct's field names case-insensitively, so {"price_fen":1,
// "PRICE_FEN":2990} would mean 2990 to the cabinet and possibly 1 to a
// case-sensitive reader that checked it before it was signed. So where the
// target is a struct, a key must be one of its JSON field names exactly;
// in maps and in values decoded by their own UnmarshalJSON (json.RawMessage)
// keys must only be unique.
func JSON(data []byte, v any) error {
	if err := checkKeys(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// checkKeys walks the single JSON value in data along the Go type t.
func checkKeys(data []byte, t reflect.Type) error {
	if len(bytes.TrimLeft(data, " \t\r\n")) == 0 {
		return ruleErr("no JSON value")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // a number too big for float64 is the decoder's to judge, not ours
	if err := walk(dec, t, 0); err != nil {
		if errors.Is(err, io.EOF) {
			return ruleErr("JSON value cut short: %w", io.ErrUnexpectedEOF)
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ruleErr("trailing data after JSON value")
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
		return ruleErr("want a JSON object")
	}
	if !ok {
		return nil // a scalar: its type is the decoder's business
	}
	if depth >= MaxDepth {
		return ruleErr("JSON nested deeper than %d levels", MaxDepth)
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
			return ruleErr("duplicate key %.64q", k)
		}
		seen[k] = true
		next := elem
		if fields != nil {
			ft, ok := fields[k]
			if !ok {
				return ruleErr("unknown field %.64q", k)
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
