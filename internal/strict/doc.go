// Package strict decodes untrusted input so that one value has exactly one
// accepted spelling: canonical unpadded base64url (Base64URL) and JSON with
// no duplicate, unknown or case-folded keys and nothing after the value
// (JSON). The signed envelope and payloads (telemetry/msg, whose
// DecodeStrict adds the size cap and is what the rest of the repository
// calls) and the QR code (payment) decode through it, so a signature checked
// over one spelling cannot mean another.
//
// It imports the standard library only; nothing else in the repository may
// be imported from here.
package strict
