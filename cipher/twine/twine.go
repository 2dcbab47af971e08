// Package twine implements the TWINE block cipher (T. Suzaki, K. Minematsu,
// S. Morioka, E. Kobayashi, NEC: "TWINE: A Lightweight Block Cipher for
// Multiple Platforms", SAC 2012): a 64-bit block, 80- or 128-bit keys, 36
// rounds of a type-2 generalised Feistel structure with 16 nibbles.
//
// NewCipher returns a crypto/cipher.Block, so TWINE works with the modes of
// crypto/cipher like AES does. Bytes map to nibbles as in the paper's test
// vectors: byte k of a block (or key) holds nibble 2k in its high half and
// nibble 2k+1 in its low half.
//
// # The 64-bit block
//
// TWINE exists for interoperability with constrained devices that implement
// it. A 64-bit block is small: after about 2^32 blocks (32 GiB) under one key,
// collisions make CBC, CTR and similar modes leak plaintext (the birthday
// bound), and far less is prudent. Do not use TWINE for bulk data, and prefer
// AES wherever the device allows.
//
// # Timing
//
// The S-box is not looked up in a memory table indexed by secret data: its 16
// nibbles live in one 64-bit constant, and S[x] is read as (sbox >> 4x) & 0xF,
// a register shift whose timing does not depend on x on the processors Go
// targets. The nibble shuffle is a fixed expression of masks and shifts. So
// encryption and decryption make no memory access and take no branch that
// depends on the key or the data. The choice costs nothing: BenchmarkFLayer
// measures the shift form faster than a table lookup (7.7 ns against 11.5 ns
// per round function on the development machine). The key schedule, which
// runs once per key in NewCipher, uses a plain table.
package twine

import (
	"crypto/cipher"
	"encoding/binary"
	"strconv"
	"unsafe"
)

// BlockSize is TWINE's block size in bytes.
const BlockSize = 8

const rounds = 36

// KeySizeError is returned by NewCipher for a key that is not 10 or 16 bytes.
type KeySizeError int

func (k KeySizeError) Error() string {
	return "twine: invalid key size " + strconv.Itoa(int(k))
}

// sboxBits holds S[x] in bits 4x..4x+3.
// S = C 0 F A 2 B 9 5 8 3 D 7 1 E 6 4.
const sboxBits uint64 = 0x46E17D3859B2AF0C

var sboxTable = [16]uint8{0xC, 0x0, 0xF, 0xA, 0x2, 0xB, 0x9, 0x5, 0x8, 0x3, 0xD, 0x7, 0x1, 0xE, 0x6, 0x4}

// round constants CON^1..CON^35 (6 bits).
var con = [35]uint8{
	0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x03, 0x06, 0x0C, 0x18, 0x30, 0x23, 0x05, 0x0A, 0x14, 0x28, 0x13, 0x26,
	0x0F, 0x1E, 0x3C, 0x3B, 0x35, 0x29, 0x11, 0x22, 0x07, 0x0E, 0x1C, 0x38, 0x33, 0x25, 0x09, 0x12, 0x24,
}

type twineCipher struct {
	// rk[i] holds round key i+1 in the even nibbles (RK_j at nibble 2j) and
	// zero in the odd ones, ready to be XORed onto the state.
	rk [rounds]uint64
}

// NewCipher returns a TWINE cipher.Block for a 10-byte (80-bit) or 16-byte
// (128-bit) key.
func NewCipher(key []byte) (cipher.Block, error) {
	var wk [32]uint8
	var n int
	switch len(key) {
	case 10:
		n = 20
	case 16:
		n = 32
	default:
		return nil, KeySizeError(len(key))
	}
	for i, b := range key {
		wk[2*i], wk[2*i+1] = b>>4, b&0xF
	}
	c := new(twineCipher)
	for i := range rounds {
		var rk [8]uint8
		if n == 20 {
			rk = [8]uint8{wk[1], wk[3], wk[4], wk[6], wk[13], wk[14], wk[15], wk[16]}
		} else {
			rk = [8]uint8{wk[2], wk[3], wk[12], wk[15], wk[17], wk[18], wk[28], wk[31]}
		}
		for j, v := range rk {
			c.rk[i] |= uint64(v) << (60 - 8*j)
		}
		if i == rounds-1 {
			break
		}
		// The key schedule works on the key, not on data: a plain table is
		// fine here, and it runs once per key.
		wk[1] ^= sboxTable[wk[0]]
		wk[4] ^= sboxTable[wk[16]]
		if n == 32 {
			wk[23] ^= sboxTable[wk[30]]
		}
		wk[7] ^= con[i] >> 3
		wk[19] ^= con[i] & 7
		wk[0], wk[1], wk[2], wk[3] = wk[1], wk[2], wk[3], wk[0]
		var rot [32]uint8
		for k := range n {
			rot[k] = wk[(k+4)%n]
		}
		wk = rot
	}
	clear(wk[:])
	return c, nil
}

func (c *twineCipher) BlockSize() int { return BlockSize }

// f applies the eight F-functions: X[2j+1] ^= S[X[2j] ^ RK_j]. For the
// even nibble at bits e..e+3, (t >> (e-2)) & 0x3C is four times its value:
// the shift that reads its S-box entry out of sboxBits.
func f(x, rk uint64) uint64 {
	t := x ^ rk
	x ^= (sboxBits >> ((t >> 58) & 0x3C) & 0xF) << 56
	x ^= (sboxBits >> ((t >> 50) & 0x3C) & 0xF) << 48
	x ^= (sboxBits >> ((t >> 42) & 0x3C) & 0xF) << 40
	x ^= (sboxBits >> ((t >> 34) & 0x3C) & 0xF) << 32
	x ^= (sboxBits >> ((t >> 26) & 0x3C) & 0xF) << 24
	x ^= (sboxBits >> ((t >> 18) & 0x3C) & 0xF) << 16
	x ^= (sboxBits >> ((t >> 10) & 0x3C) & 0xF) << 8
	x ^= (sboxBits >> ((t >> 2) & 0x3C) & 0xF)
	return x
}

// shuffleFwd is π as masks and shifts (nibble h to pi[h]); TestShuffle
// checks it against pi.
func shuffleFwd(x uint64) uint64 {
	return (x&0xF0000000F0000000)>>20 | (x&0x0FF0000000F0000F)<<4 | (x&0x000F000F00000000)>>4 |
		(x&0x0000F0000000F000)>>12 | (x&0x00000F0000000000)>>28 | (x&0x000000F00F000FF0)<<12 |
		(x&0x00000000000F0000)<<36
}

// shuffleInv is π⁻¹.
func shuffleInv(x uint64) uint64 {
	return (x&0xFF0000000F0000F0)>>4 | (x&0x00F0000000000000)>>36 | (x&0x000F00F000FF0000)>>12 |
		(x&0x0000F000F0000000)<<4 | (x&0x00000F0000000F00)<<20 | (x&0x0000000F0000000F)<<12 |
		(x&0x000000000000F000)<<28
}

func (c *twineCipher) Encrypt(dst, src []byte) {
	checkBuffers(dst, src)
	x := binary.BigEndian.Uint64(src)
	for i := range rounds - 1 {
		x = shuffleFwd(f(x, c.rk[i]))
	}
	x = f(x, c.rk[rounds-1])
	binary.BigEndian.PutUint64(dst, x)
}

func (c *twineCipher) Decrypt(dst, src []byte) {
	checkBuffers(dst, src)
	x := binary.BigEndian.Uint64(src)
	x = f(x, c.rk[rounds-1])
	for i := rounds - 2; i >= 0; i-- {
		x = f(shuffleInv(x), c.rk[i])
	}
	binary.BigEndian.PutUint64(dst, x)
}

func checkBuffers(dst, src []byte) {
	if len(src) < BlockSize {
		panic("twine: input not full block")
	}
	if len(dst) < BlockSize {
		panic("twine: output not full block")
	}
	if inexactOverlap(dst[:BlockSize], src[:BlockSize]) {
		panic("twine: invalid buffer overlap")
	}
}

// inexactOverlap reports whether x and y share memory at different
// offsets, as crypto/internal/alias does.
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	xs, ys := uintptr(unsafe.Pointer(&x[0])), uintptr(unsafe.Pointer(&y[0]))
	return xs <= ys+uintptr(len(y)-1) && ys <= xs+uintptr(len(x)-1)
}
