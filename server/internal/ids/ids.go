// Package ids makes paycenter's identifiers: time-sortable, unguessable, [0-9A-Za-z] only.
package ids

import (
	"crypto/rand"
	"encoding/binary"
	"math/big"
	"math/bits"
	"time"
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// width is the length of a 128-bit number in base 62, zero-padded so that the string order
// equals the numeric (time) order.
const width = 22

// Token returns width characters: 48 bits of milliseconds since the epoch then 80 random
// bits, so tokens sort by creation time and cannot be guessed.
func Token(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	// The 128-bit number hi:lo in base 62, by long division of its two 64-bit halves.
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	var out [width]byte
	for i := width - 1; i >= 0; i-- {
		var rem uint64
		hi, rem = bits.Div64(0, hi, 62)
		lo, rem = bits.Div64(rem, lo, 62)
		out[i] = alphabet[rem]
	}
	return string(out[:])
}

// New returns prefix + "_" + a token, e.g. "mch_0Fz3...".
func New(prefix string) string { return prefix + "_" + Token(time.Now()) }

// Secret returns n random bytes encoded in the alphabet, for API keys and tokens.
func Secret(n int) string {
	out := make([]byte, n)
	max := big.NewInt(62)
	for i := range out {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("crypto/rand failed: " + err.Error())
		}
		out[i] = alphabet[v.Int64()]
	}
	return string(out)
}
