package payment

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Money errors.
var (
	// ErrOverflow means an amount does not fit in an int64 number of fen.
	ErrOverflow = errors.New("payment: amount overflows")
	// ErrBadAmount means a yuan string is not of the form 29, 29.9 or 29.90.
	ErrBadAmount = errors.New("payment: bad amount")
)

// Fen is an amount of money in fen (0.01 yuan), the unit of every amount on
// the wire.
type Fen int64

// String formats the amount in yuan with two decimals: ¥29.90, -¥0.05.
func (f Fen) String() string {
	// Work on the magnitude as uint64 so that math.MinInt64 formats too.
	mag := uint64(f)
	sign := ""
	if f < 0 {
		mag = -mag
		sign = "-"
	}
	cents := mag % 100
	return sign + "¥" + strconv.FormatUint(mag/100, 10) + "." +
		string([]byte{byte('0' + cents/10), byte('0' + cents%10)})
}

// ParseYuan parses a decimal yuan amount with at most two decimals, such as
// "29.90", "29.9" or "29", into fen. A leading "-" and a "¥" sign are
// accepted so that ParseYuan(f.String()) == f. Anything else (spaces, "+",
// exponents, a third decimal, "29." or ".5") is refused rather than
// rounded.
func ParseYuan(s string) (Fen, error) {
	rest := s
	neg := false
	if len(rest) > 0 && rest[0] == '-' {
		neg = true
		rest = rest[1:]
	}
	rest, _ = strings.CutPrefix(rest, "¥")
	whole, frac, hasDot := strings.Cut(rest, ".")
	if whole == "" || (hasDot && (frac == "" || len(frac) > 2)) {
		return 0, fmt.Errorf("%w: %q", ErrBadAmount, s)
	}
	// Accumulate the magnitude in fen as uint64; the limit is one more for
	// a negative amount (two's complement).
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	var mag uint64
	digit := func(c byte) error {
		if c < '0' || c > '9' {
			return fmt.Errorf("%w: %q", ErrBadAmount, s)
		}
		d := uint64(c - '0')
		if mag > (limit-d)/10 {
			return fmt.Errorf("%w: %q", ErrOverflow, s)
		}
		mag = mag*10 + d
		return nil
	}
	for i := 0; i < len(whole); i++ {
		if err := digit(whole[i]); err != nil {
			return 0, err
		}
	}
	for i := 0; i < 2; i++ {
		c := byte('0')
		if i < len(frac) {
			c = frac[i]
		}
		if err := digit(c); err != nil {
			return 0, err
		}
	}
	if neg {
		return Fen(-mag), nil // -(1<<63) wraps to math.MinInt64, as intended
	}
	return Fen(mag), nil
}

// Mul returns f·qty, or ErrOverflow if the product does not fit.
func (f Fen) Mul(qty int) (Fen, error) {
	r, ok := mul64(int64(f), int64(qty))
	if !ok {
		return 0, fmt.Errorf("%w: %d fen × %d", ErrOverflow, int64(f), qty)
	}
	return Fen(r), nil
}

// Add returns f+g, or ErrOverflow if the sum does not fit.
func (f Fen) Add(g Fen) (Fen, error) {
	r, ok := add64(int64(f), int64(g))
	if !ok {
		return 0, fmt.Errorf("%w: %d fen + %d fen", ErrOverflow, int64(f), int64(g))
	}
	return Fen(r), nil
}

func mul64(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	r := a * b
	// MinInt64 × -1 wraps to MinInt64 and passes the division test, so it
	// is caught explicitly.
	if (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) || r/b != a {
		return 0, false
	}
	return r, true
}

func add64(a, b int64) (int64, bool) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, false
	}
	return a + b, true
}
