package cipher

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/credlife/clm/cipher/twine"
)

// Algorithm is a symmetric cipher.
type Algorithm int

const (
	AES   Algorithm = 1
	TWINE Algorithm = 2
)

// String returns "AES" or "TWINE", the names of the wire protocol.
func (a Algorithm) String() string {
	switch a {
	case AES:
		return "AES"
	case TWINE:
		return "TWINE"
	}
	return "Algorithm(" + strconv.Itoa(int(a)) + ")"
}

// KeySizes returns the key lengths, in bits, that the algorithm has.
func (a Algorithm) KeySizes() []int {
	switch a {
	case AES:
		return []int{128, 192, 256}
	case TWINE:
		return []int{80, 128}
	}
	return nil
}

// ErrUnknownAlgorithm is returned for a name that is not AES or TWINE.
var ErrUnknownAlgorithm = errors.New("cipher: unknown algorithm")

// ErrKeyLength is returned for a key length the algorithm does not have
// (TWINE-256, for instance).
var ErrKeyLength = errors.New("cipher: key length not defined for the algorithm")

// ParseAlgorithm parses "AES" or "TWINE", in any case.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToUpper(s) {
	case "AES":
		return AES, nil
	case "TWINE":
		return TWINE, nil
	}
	return 0, ErrUnknownAlgorithm
}

// KeyType is an algorithm with a key length: AES-128, TWINE-80, ...
type KeyType struct {
	Algorithm Algorithm
	Bits      int
}

// The key types clm manages.
var (
	AES128   = KeyType{AES, 128}
	AES192   = KeyType{AES, 192}
	AES256   = KeyType{AES, 256}
	TWINE80  = KeyType{TWINE, 80}
	TWINE128 = KeyType{TWINE, 128}
)

// NewKeyType returns the key type of an algorithm and a length in bits:
// ErrUnknownAlgorithm or ErrKeyLength if there is none.
func NewKeyType(a Algorithm, bits int) (KeyType, error) {
	sizes := a.KeySizes()
	if sizes == nil {
		return KeyType{}, ErrUnknownAlgorithm
	}
	for _, s := range sizes {
		if s == bits {
			return KeyType{a, bits}, nil
		}
	}
	return KeyType{}, fmt.Errorf("%w: %v-%d", ErrKeyLength, a, bits)
}

// ParseKeyType parses "AES-128", "TWINE-80", ... (the form String writes).
func ParseKeyType(s string) (KeyType, error) {
	name, bits, ok := strings.Cut(s, "-")
	if !ok {
		return KeyType{}, fmt.Errorf("cipher: key type %q: want ALGORITHM-BITS", s)
	}
	a, err := ParseAlgorithm(name)
	if err != nil {
		return KeyType{}, err
	}
	n, err := strconv.Atoi(bits)
	if err != nil {
		return KeyType{}, fmt.Errorf("%w: %q", ErrKeyLength, bits)
	}
	return NewKeyType(a, n)
}

// String returns the key type as "AES-128".
func (t KeyType) String() string { return t.Algorithm.String() + "-" + strconv.Itoa(t.Bits) }

// Size returns the key's length in bytes.
func (t KeyType) Size() int { return t.Bits / 8 }

// Valid reports whether t is one of the key types clm manages.
func (t KeyType) Valid() bool {
	_, err := NewKeyType(t.Algorithm, t.Bits)
	return err == nil
}

// GenerateKey draws a key of type t from rand, which must be a CSPRNG
// (crypto/rand.Reader).
func GenerateKey(rand io.Reader, t KeyType) ([]byte, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("%w: %v", ErrKeyLength, t)
	}
	key := make([]byte, t.Size())
	if _, err := io.ReadFull(rand, key); err != nil {
		return nil, fmt.Errorf("cipher: generating a key: %w", err)
	}
	return key, nil
}

// NewBlock returns the block cipher of a key of type t.
func NewBlock(t KeyType, key []byte) (cipher.Block, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("%w: %v", ErrKeyLength, t)
	}
	if len(key) != t.Size() {
		return nil, fmt.Errorf("cipher: a %v key is %d bytes, got %d", t, t.Size(), len(key))
	}
	if t.Algorithm == TWINE {
		return twine.NewCipher(key)
	}
	return aes.NewCipher(key)
}
