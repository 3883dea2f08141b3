// Package payment owns the money side of a shopping session: amounts in
// fen, pricing what was taken against the certified catalog, the signed
// rotating QR payload shown on the display, and the authorisation checks a
// verified platform command must pass before a door may open.
//
// It decides, it does not act. It never opens a lock, reads a scale, writes
// the ledger, publishes over MQTT or records a command id: those belong to
// the firmware, which passes in what payment needs (a PriceBook over its
// catalog cache, a Replay over its persisted id cache, the cabinet state)
// and chooses what to do with a refusal. Envelope signatures are checked in
// telemetry before anything here sees a command.
//
// Money is integer fen everywhere; no float is used in any amount, and
// every multiplication and sum is checked for overflow.
//
// payment imports only the standard library and telemetry/msg (the wire
// types); it must never import firmware, simulator or hal.
package payment
