package main

// `cabinet check-config FILE`, and how a config the daemon refuses is
// explained: one problem a line, each naming the setting and what it must
// be, without the Go packages' error prefixes ("config: ", "msg: ", "json:
// cannot unmarshal … into Go struct field …").

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"regexp"
	"strings"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/internal/strict"
)

func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 2 && args[0] == "--" {
		args = args[1:] // a file whose name starts with '-'
	} else if len(args) == 1 && strings.HasPrefix(args[0], "-") {
		args = nil
	}
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: cabinet check-config FILE")
		return 2
	}
	if _, err := config.Load(args[0]); err != nil {
		printConfigError(stderr, args[0], err)
		return 1
	}
	fmt.Fprintln(stdout, "config ok")
	return 0
}

// printConfigError writes what config.Load said about path, for people.
func printConfigError(w io.Writer, path string, err error) {
	probs := configProblems(path, err)
	if len(probs) == 1 {
		fmt.Fprintf(w, "%s: %s\n", path, probs[0])
		return
	}
	fmt.Fprintf(w, "%s: %d problems:\n", path, len(probs))
	for _, p := range probs {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

// configProblems turns an error of config.Load(path) into one line per
// problem.
func configProblems(path string, err error) []string {
	if pe, ok := errors.AsType[*fs.PathError](err); ok && pe.Path == path {
		return []string{fmt.Sprintf("cannot read the file: %v", pe.Err)}
	}
	// Validate reports every problem at once, joined.
	for e := err; e != nil; e = errors.Unwrap(e) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			var out []string
			for _, c := range j.Unwrap() {
				out = append(out, configProblem(path, c))
			}
			return out
		}
	}
	return []string{configProblem(path, err)}
}

// pkgPrefix matches the error prefixes of this repository's packages and
// encoding/json, at the start of the text or of a wrapped part.
var pkgPrefix = regexp.MustCompile(`(^|: )(config|telemetry|msg|json|strict|board): `)

func configProblem(path string, err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
		return fmt.Sprintf("%s: want %s, not a JSON %s", te.Field, jsonKind(te.Type), te.Value)
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("not valid JSON at byte %d: %v", se.Offset, se)
	}
	if re, ok := errors.AsType[*strict.RuleError](err); ok {
		r := re.Error()
		if k, ok := strings.CutPrefix(r, "unknown field "); ok {
			return fmt.Sprintf("%s is not a setting (misspelt? docs/config.md lists them all)", k)
		}
		if k, ok := strings.CutPrefix(r, "duplicate key "); ok {
			return fmt.Sprintf("%s is given twice", k)
		}
		return "not a valid config file: " + r
	}
	s := strings.TrimPrefix(err.Error(), path+": ")
	for {
		t := pkgPrefix.ReplaceAllString(s, "$1")
		if t == s {
			break
		}
		s = t
	}
	s = strings.ReplaceAll(s, "tls: tls ", "tls.")
	s = strings.ReplaceAll(s, "tls: broker", "broker")
	if strings.Contains(s, "bad public key") {
		s += ": want an Ed25519 public key, base64url without padding (43 characters)"
	}
	return s
}

// jsonKind says in words what JSON a Go type takes.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "another type"
}
