package ota

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// MaxBundleBytes bounds a bundle's size: a cabinet binary is tens of MB.
const MaxBundleBytes = 256 << 20

// Errors of Check, each wrapped with the details.
var (
	ErrNoReleaseKey = errors.New("no release key configured")
	ErrUnknownKey   = errors.New("unknown release key")
	ErrBadSignature = errors.New("bad release signature")
	ErrDowngrade    = errors.New("downgrade refused")
	ErrBadBundle    = errors.New("bad bundle")
)

// VerifySignature checks b's signature by the release key it names.
func VerifySignature(b msg.Bundle, keys map[string]string) error {
	if len(keys) == 0 {
		return ErrNoReleaseKey
	}
	k, ok := keys[b.KeyID]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownKey, b.KeyID)
	}
	pub, err := msg.DecodeKey(k)
	if err != nil {
		return fmt.Errorf("%w %q: %v", ErrUnknownKey, b.KeyID, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(b.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: not a base64url Ed25519 signature", ErrBadSignature)
	}
	if !ed25519.Verify(pub, []byte(msg.ReleaseText(b.Version, b.Size, b.SHA256, b.MinVersion)), sig) {
		return fmt.Errorf("%w (key %q)", ErrBadSignature, b.KeyID)
	}
	return nil
}

// Sign returns b with KeyID and Signature set by key.
func Sign(b msg.Bundle, kid string, key ed25519.PrivateKey) msg.Bundle {
	b.KeyID = kid
	b.Signature = base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(msg.ReleaseText(b.Version, b.Size, b.SHA256, b.MinVersion))))
	return b
}

// Check runs every check an update command passes before anything is
// downloaded, in order: release key known, signature valid, version above
// the running one and at least the floor, no trial running, size sane.
func Check(b msg.Bundle, keys map[string]string, running string, st State) error {
	if err := VerifySignature(b, keys); err != nil {
		return err
	}
	if !ValidVersion(b.Version) {
		return fmt.Errorf("%w: version %q", ErrBadBundle, b.Version)
	}
	if b.MinVersion != "" && !ValidVersion(b.MinVersion) {
		return fmt.Errorf("%w: min_version %q", ErrBadBundle, b.MinVersion)
	}
	if !Newer(b.Version, running) {
		return fmt.Errorf("%w: %s is not above the running %s", ErrDowngrade, b.Version, running)
	}
	if st.Floor != "" && !msg.FWAtLeast(b.Version, st.Floor) {
		return fmt.Errorf("%w: %s is below the minimum version %s", ErrDowngrade, b.Version, st.Floor)
	}
	if st.Trial != nil {
		return fmt.Errorf("%w: version %s is still on trial", ErrBadBundle, st.Trial.Version)
	}
	if b.Size <= 0 || b.Size > MaxBundleBytes {
		return fmt.Errorf("%w: size %d: want 1..%d", ErrBadBundle, b.Size, MaxBundleBytes)
	}
	if h, err := hex.DecodeString(b.SHA256); err != nil || len(h) != 32 {
		return fmt.Errorf("%w: sha256 %q: want 64 hex digits", ErrBadBundle, b.SHA256)
	}
	if b.URL == "" {
		return fmt.Errorf("%w: no url", ErrBadBundle)
	}
	return nil
}
