package payment

import (
	"errors"
	"math"
	"testing"
)

func TestFenString(t *testing.T) {
	for _, tc := range []struct {
		f    Fen
		want string
	}{
		{0, "¥0.00"},
		{5, "¥0.05"},
		{50, "¥0.50"},
		{2990, "¥29.90"},
		{100, "¥1.00"},
		{-2990, "-¥29.90"},
		{-5, "-¥0.05"},
		{math.MaxInt64, "¥92233720368547758.07"},
		{math.MinInt64, "-¥92233720368547758.08"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.f.String(); got != tc.want {
				t.Errorf("Fen(%d).String() = %q, want %q", int64(tc.f), got, tc.want)
			}
		})
	}
}

func TestParseYuan(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Fen
		wantErr error
	}{
		{"29.90", 2990, nil},
		{"29.9", 2990, nil},
		{"29", 2900, nil},
		{"0.05", 5, nil},
		{"0", 0, nil},
		{"007.10", 710, nil},
		{"-29.90", -2990, nil},
		{"¥29.90", 2990, nil},
		{"-¥0.05", -5, nil},
		{"92233720368547758.07", math.MaxInt64, nil},
		{"-92233720368547758.08", math.MinInt64, nil},
		{"92233720368547758.08", 0, ErrOverflow},
		{"-92233720368547758.09", 0, ErrOverflow},
		{"100000000000000000000", 0, ErrOverflow},
		{"", 0, ErrBadAmount},
		{"-", 0, ErrBadAmount},
		{"¥", 0, ErrBadAmount},
		{"29.", 0, ErrBadAmount},
		{".5", 0, ErrBadAmount},
		{"29.999", 0, ErrBadAmount},
		{"29.9a", 0, ErrBadAmount},
		{"1e3", 0, ErrBadAmount},
		{"+29", 0, ErrBadAmount},
		{" 29", 0, ErrBadAmount},
		{"29 ", 0, ErrBadAmount},
		{"1,000", 0, ErrBadAmount},
		{"--1", 0, ErrBadAmount},
		{"¥-1", 0, ErrBadAmount},
		{"1.2.3", 0, ErrBadAmount},
		{"２９", 0, ErrBadAmount}, // full-width digits
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseYuan(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ParseYuan(%q) = %v, %v; want %v", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseYuan(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseYuanRoundTrip(t *testing.T) {
	for _, f := range []Fen{0, 1, -1, 99, 2990, -123456, math.MaxInt64, math.MinInt64} {
		got, err := ParseYuan(f.String())
		if err != nil || got != f {
			t.Errorf("ParseYuan(%q) = %d, %v; want %d", f.String(), got, err, f)
		}
	}
}

func TestFenMul(t *testing.T) {
	for _, tc := range []struct {
		name     string
		f        Fen
		qty      int
		want     Fen
		overflow bool
	}{
		{"simple", 2990, 3, 8970, false},
		{"zero qty", 2990, 0, 0, false},
		{"zero price", 0, math.MaxInt, 0, false},
		{"negative", -2990, 2, -5980, false},
		{"max", math.MaxInt64, 1, math.MaxInt64, false},
		{"just fits", math.MaxInt64 / 2, 2, math.MaxInt64 - 1, false},
		{"overflow", math.MaxInt64/2 + 1, 2, 0, true},
		{"big qty", 1 << 40, 1 << 30, 0, true}, // qty fits a 32-bit int too
		{"min times -1", math.MinInt64, -1, 0, true},
		{"negative times negative", -(1 << 62), -2, 0, true},
		{"negative overflow", math.MinInt64/2 - 1, 2, 0, true},
		{"min times 1", math.MinInt64, 1, math.MinInt64, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.f.Mul(tc.qty)
			if tc.overflow {
				if !errors.Is(err, ErrOverflow) {
					t.Fatalf("%d.Mul(%d) = %d, %v; want ErrOverflow", tc.f, tc.qty, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("%d.Mul(%d) = %d, %v; want %d", tc.f, tc.qty, got, err, tc.want)
			}
		})
	}
}

func TestFenAdd(t *testing.T) {
	for _, tc := range []struct {
		name     string
		a, b     Fen
		want     Fen
		overflow bool
	}{
		{"simple", 2990, 10, 3000, false},
		{"negative", -2990, 10, -2980, false},
		{"to max", math.MaxInt64 - 1, 1, math.MaxInt64, false},
		{"over max", math.MaxInt64, 1, 0, true},
		{"to min", math.MinInt64 + 1, -1, math.MinInt64, false},
		{"under min", math.MinInt64, -1, 0, true},
		{"max plus min", math.MaxInt64, math.MinInt64, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.a.Add(tc.b)
			if tc.overflow {
				if !errors.Is(err, ErrOverflow) {
					t.Fatalf("%d.Add(%d) = %d, %v; want ErrOverflow", tc.a, tc.b, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("%d.Add(%d) = %d, %v; want %d", tc.a, tc.b, got, err, tc.want)
			}
		})
	}
}
