package board

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, that every problem it reports
// is an *Error naming the file in line order, and that whatever it accepts
// passes Validate and survives Format → Parse unchanged. The seed corpus in
// testdata/fuzz/FuzzParse holds the shipped boards and broken variants.
func FuzzParse(f *testing.F) {
	for _, name := range Shipped() {
		data, err := shipped.ReadFile("boards/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(base))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse("f.yaml", data)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return
			}
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			last := 0
			for _, e := range errs {
				var be *Error
				if !errors.As(e, &be) || be.File != "f.yaml" || !errors.Is(e, ErrInvalid) {
					t.Fatalf("problem %v is not a board.Error for f.yaml", e)
				}
				if be.Line < last {
					t.Fatalf("problems out of line order: %v", err)
				}
				last = be.Line
			}
			return
		}
		roundTrip(t, b)
	})
}

// BenchmarkParse measures decoding and validating the largest shipped board.
func BenchmarkParse(b *testing.B) {
	data, err := shipped.ReadFile("boards/rpi4-fridge-2door.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("rpi4-fridge-2door.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
