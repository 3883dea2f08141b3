package msg

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a globally unique, time-ordered id in the ULID layout
// (48-bit millisecond time, 80 random bits, Crockford base32, 26
// characters): the form of sale_id, alarm_id and restock_id.
func NewID(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	if _, err := rand.Read(b[6:]); err != nil {
		panic("msg: crypto/rand failed: " + err.Error()) // the OS RNG does not fail on Linux ≥ 3.17
	}
	// 128 bits → 26 base32 digits, most significant first (2 leading pad bits).
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
