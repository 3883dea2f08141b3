package strict

import (
	"encoding/base64"
	"errors"
	"strings"
)

// b64 refuses non-zero padding bits; Base64URL also refuses the CR and LF
// that Go's decoder skips.
var b64 = base64.RawURLEncoding.Strict()

// Base64URL decodes the canonical unpadded base64url form only (RFC 4648
// §5 without '=', zero padding bits, no line breaks), so encoded bytes have
// exactly one spelling. Encode with base64.RawURLEncoding.
func Base64URL(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line break in base64")
	}
	return b64.DecodeString(s)
}
