// Package fuzzseed keeps the committed seed corpora of the fuzz targets
// honest: each package's TestFuzzSeedsCommitted builds its seeds in Go (real
// signed messages, each broken one way) and Check fails unless
// testdata/fuzz/<target> holds every one of them byte for byte. Run the
// test with -update-corpus to write them.
//
// It owns the corpus file format of `go test -fuzz` and the flag; it is
// for tests only.
package fuzzseed

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update-corpus", false, "rewrite the committed fuzz seed corpora")

// File is one seed in the file format of `go test -fuzz`: args are the
// fuzz target's arguments after *testing.T ([]byte, string or bool).
func File(args ...any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%v)\n", v)
		default:
			panic(fmt.Sprintf("fuzzseed: argument of type %T", a))
		}
	}
	return b.Bytes()
}

// Check fails unless testdata/fuzz/<target> holds every seed file (name →
// contents) byte for byte; files the fuzzer wrote after a failure may sit
// beside them. With -update-corpus it writes them instead.
func Check(t testing.TB, target string, files map[string][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	for name, want := range files {
		path := filepath.Join(dir, name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
			t.Errorf("seed %s is missing or stale (%v); rerun with -update-corpus", path, err)
		}
	}
}

// Bytes is Check for a target taking one []byte.
func Bytes(t testing.TB, target string, seeds map[string][]byte) {
	t.Helper()
	files := make(map[string][]byte, len(seeds))
	for name, p := range seeds {
		files[name] = File(p)
	}
	Check(t, target, files)
}
