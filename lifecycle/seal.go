package lifecycle

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"

	"github.com/credlife/clm/lifecycle/driver"
)

// KEK is a key-encryption key: 32 bytes and the version that names it. A
// KEK never prints its key.
type KEK struct {
	Version uint32 // > 0
	Key     []byte // 32 bytes
}

// Format prints the version only.
func (k KEK) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "KEK{Version:%d Key:%s}", k.Version, redacted)
}

// LogValue makes log/slog print the version only.
func (k KEK) LogValue() slog.Value { return slog.GroupValue(slog.Any("version", k.Version)) }

// ErrUnknownKEK is wrapped when a sealed value names a KEK version that the
// KeySource does not have.
var ErrUnknownKEK = errors.New("unknown KEK version")

// KeySource supplies key-encryption keys. A KMS-backed source unwraps its
// keys through the KMS and caches them; StaticKeys holds them in memory.
//
// Implementations must be safe for concurrent use. The engine calls
// CurrentKEK for every value it seals and KEK for every value it opens, so
// both should answer from memory.
type KeySource interface {
	// CurrentKEK returns the KEK that seals new values.
	CurrentKEK(ctx context.Context) (KEK, error)
	// KEK returns the KEK of a version, or an error wrapping ErrUnknownKEK.
	KEK(ctx context.Context, version uint32) (KEK, error)
}

// StaticKeys is a KeySource over keys held in memory: the current version
// seals, every version opens. Keep retired versions until a re-seal pass
// (Engine.Reseal) has moved every value to the current one.
type StaticKeys struct {
	current uint32
	keys    map[uint32][]byte
}

// NewStaticKeys returns a KeySource with the given keys (32 bytes each) of
// which current seals. The map is copied.
func NewStaticKeys(current uint32, keys map[uint32][]byte) (*StaticKeys, error) {
	if current == 0 {
		return nil, errors.New("clm: KEK version 0 is reserved")
	}
	s := &StaticKeys{current: current, keys: make(map[uint32][]byte, len(keys))}
	for v, k := range keys {
		if v == 0 {
			return nil, errors.New("clm: KEK version 0 is reserved")
		}
		if len(k) != 32 {
			return nil, fmt.Errorf("clm: KEK version %d is %d bytes, want 32", v, len(k))
		}
		s.keys[v] = append([]byte(nil), k...)
	}
	if _, ok := s.keys[current]; !ok {
		return nil, fmt.Errorf("clm: no key for the current KEK version %d", current)
	}
	return s, nil
}

// CurrentKEK implements KeySource.
func (s *StaticKeys) CurrentKEK(context.Context) (KEK, error) {
	return KEK{Version: s.current, Key: s.keys[s.current]}, nil
}

// KEK implements KeySource.
func (s *StaticKeys) KEK(_ context.Context, v uint32) (KEK, error) {
	k, ok := s.keys[v]
	if !ok {
		return KEK{}, fmt.Errorf("clm: KEK version %d: %w", v, ErrUnknownKEK)
	}
	return KEK{Version: v, Key: k}, nil
}

// Sealed values are laid out as
//
//	format (1 byte) | KEK version (4 bytes, big endian) | nonce (12) | AES-256-GCM ciphertext and tag
//
// and the AEAD's associated data is the 5-byte header followed by the
// caller's associated data, which names the record the value belongs to.
// Format 3, which Seal writes, marks values whose associated data names
// the record's tenant and kind as well as its id (driver.SealedValue.AD); format 1
// values, written before, name the id alone, and still open until Reseal
// converts them.
const (
	sealFormatV1  = 1 // associated data: the record's id
	sealFormat    = 3 // associated data: the record's kind, tenant and id
	sealHeaderLen = 5
	sealNonceLen  = 12
	sealOverhead  = sealHeaderLen + sealNonceLen + 16
	macFormat     = 2
	macLen        = sealHeaderLen + sha256.Size
)

// Sealer seals secrets at rest with AES-256-GCM under the KEKs of a
// KeySource, and computes keyed hashes of secrets that are only ever
// compared (device keys of stores of older versions; they are sealed now,
// so that a re-seal carries them to a new KEK). Each KEK is expanded with
// HKDF-SHA256 into one key for sealing and one for hashing. A Sealer is
// safe for concurrent use.
//
// Every sealed value and hash names the KEK version that made it; the
// associated data binds it to its record, so a value copied into another
// record fails to open. Errors carry CodeEncrypt or CodeDecrypt and never
// any part of a secret.
type Sealer struct {
	src  KeySource
	rand io.Reader

	mu    sync.RWMutex
	cache map[uint32]*derivedKEK
}

type derivedKEK struct {
	aead   cipher.AEAD
	macKey []byte
}

// NewSealer returns a Sealer over src that draws nonces from rand
// (crypto/rand.Reader when nil).
func NewSealer(src KeySource, rnd io.Reader) *Sealer {
	if rnd == nil {
		rnd = rand.Reader
	}
	return &Sealer{src: src, rand: rnd, cache: make(map[uint32]*derivedKEK)}
}

func (s *Sealer) derived(k KEK) (*derivedKEK, error) {
	s.mu.RLock()
	d := s.cache[k.Version]
	s.mu.RUnlock()
	if d != nil {
		return d, nil
	}
	if len(k.Key) != 32 || k.Version == 0 {
		return nil, errors.New("invalid KEK")
	}
	sealKey, err := hkdf.Key(sha256.New, k.Key, nil, "clm seal v1", 32)
	if err != nil {
		return nil, err
	}
	macKey, err := hkdf.Key(sha256.New, k.Key, nil, "clm mac v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	d = &derivedKEK{aead: aead, macKey: macKey}
	s.mu.Lock()
	s.cache[k.Version] = d
	s.mu.Unlock()
	return d, nil
}

func (s *Sealer) current(ctx context.Context) (uint32, *derivedKEK, error) {
	k, err := s.src.CurrentKEK(ctx)
	if err != nil {
		return 0, nil, err
	}
	d, err := s.derived(k)
	return k.Version, d, err
}

func (s *Sealer) version(ctx context.Context, v uint32) (*derivedKEK, error) {
	s.mu.RLock()
	d := s.cache[v]
	s.mu.RUnlock()
	if d != nil {
		return d, nil
	}
	k, err := s.src.KEK(ctx, v)
	if err != nil {
		return nil, err
	}
	return s.derived(k)
}

// Seal encrypts plaintext under the current KEK, bound to ad (the identity
// of the record that will hold it).
func (s *Sealer) Seal(ctx context.Context, plaintext, ad []byte) ([]byte, error) {
	v, d, err := s.current(ctx)
	if err != nil {
		return nil, errf("Seal", CodeEncrypt, "", err)
	}
	out := make([]byte, sealHeaderLen+sealNonceLen, sealOverhead+len(plaintext))
	out[0] = sealFormat
	binary.BigEndian.PutUint32(out[1:5], v)
	if _, err := io.ReadFull(s.rand, out[sealHeaderLen:]); err != nil {
		return nil, errf("Seal", CodeEncrypt, "", err)
	}
	return d.aead.Seal(out, out[sealHeaderLen:], plaintext, sealAD(out[:sealHeaderLen], ad)), nil
}

// Open decrypts a value made by Seal with the same ad.
func (s *Sealer) Open(ctx context.Context, sealed, ad []byte) ([]byte, error) {
	v, err := SealedVersion(sealed)
	if err != nil || sealed[0] == macFormat {
		return nil, errf("Open", CodeDecrypt, "", errors.New("malformed sealed value"))
	}
	d, err := s.version(ctx, v)
	if err != nil {
		return nil, errf("Open", CodeDecrypt, "", err)
	}
	nonce := sealed[sealHeaderLen : sealHeaderLen+sealNonceLen]
	pt, err := d.aead.Open(nil, nonce, sealed[sealHeaderLen+sealNonceLen:], sealAD(sealed[:sealHeaderLen], ad))
	if err != nil {
		return nil, errf("Open", CodeDecrypt, "", errors.New("sealed value does not open: wrong key or wrong record"))
	}
	return pt, nil
}

func sealAD(header, ad []byte) []byte {
	return append(append(make([]byte, 0, len(header)+len(ad)), header...), ad...)
}

// SealedVersion returns the KEK version named by a sealed value or a keyed
// hash.
func SealedVersion(sealed []byte) (uint32, error) {
	switch {
	case len(sealed) >= sealOverhead && (sealed[0] == sealFormat || sealed[0] == sealFormatV1):
	case len(sealed) == macLen && sealed[0] == macFormat:
	default:
		return 0, errors.New("malformed sealed value")
	}
	return binary.BigEndian.Uint32(sealed[1:5]), nil
}

// MAC returns a keyed hash (HMAC-SHA256) of secret bound to ad, under the
// current KEK. It is for secrets that are only compared, never read back.
func (s *Sealer) MAC(ctx context.Context, secret, ad []byte) ([]byte, error) {
	v, d, err := s.current(ctx)
	if err != nil {
		return nil, errf("MAC", CodeEncrypt, "", err)
	}
	out := make([]byte, sealHeaderLen, macLen)
	out[0] = macFormat
	binary.BigEndian.PutUint32(out[1:5], v)
	return append(out, macOf(d.macKey, out[:sealHeaderLen], secret, ad)...), nil
}

// VerifyMAC reports, in constant time, whether mac is the keyed hash of
// secret bound to ad. An error means the hash could not be checked (a
// malformed hash, an unknown KEK version).
func (s *Sealer) VerifyMAC(ctx context.Context, mac, secret, ad []byte) (bool, error) {
	v, err := SealedVersion(mac)
	if err != nil || len(mac) != macLen {
		return false, errf("VerifyMAC", CodeDecrypt, "", errors.New("malformed keyed hash"))
	}
	d, err := s.version(ctx, v)
	if err != nil {
		return false, errf("VerifyMAC", CodeDecrypt, "", err)
	}
	return hmac.Equal(mac[sealHeaderLen:], macOf(d.macKey, mac[:sealHeaderLen], secret, ad)), nil
}

func macOf(key, header, secret, ad []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(header)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(ad)))
	h.Write(n[:])
	h.Write(ad)
	h.Write(secret)
	return h.Sum(nil)
}

// SealFor seals plaintext for the record that v names (its Kind, tenant
// and id; v.Value is ignored), so that it opens only there.
func (s *Sealer) SealFor(ctx context.Context, v driver.SealedValue, plaintext []byte) ([]byte, error) {
	v.Value = nil
	return s.Seal(ctx, plaintext, SealedAD(v))
}

// OpenSealed opens v.Value, which must belong to the record that v names:
// a value moved to another record, tenant or kind of record fails with
// CodeDecrypt.
func (s *Sealer) OpenSealed(ctx context.Context, v driver.SealedValue) ([]byte, error) {
	return s.Open(ctx, v.Value, SealedAD(v))
}

// SealedAD returns the associated data that binds a sealed value to its
// record: its kind of record, tenant and id (and, for a credential, the
// kind of credential); for a legacy value (v.Legacy), the record's id
// alone, as it was sealed.
func SealedAD(v driver.SealedValue) []byte {
	tenant := strconv.Itoa(len(v.Tenant)) + "/" + v.Tenant
	switch v.Kind {
	case driver.SealedPSKPassword:
		if v.Legacy() {
			return []byte("clm/psk/" + FormatKeyID(v.ID) + "/password")
		}
		return []byte("clm/v2/psk/" + tenant + "/" + FormatKeyID(v.ID) + "/password")
	case driver.SealedCredentialSecret:
		if v.Legacy() {
			return []byte("clm/credential/" + strconv.FormatInt(v.ID, 10) + "/secret")
		}
		return []byte("clm/v2/credential/" + v.CredentialKind.String() + "/" + tenant + "/" + strconv.FormatInt(v.ID, 10) + "/secret")
	case driver.SealedDeviceKey:
		return []byte("clm/v2/device/" + tenant + "/" + v.DeviceID + "/key")
	}
	return []byte("clm/v2/unknown/" + strconv.Itoa(int(v.Kind)))
}
