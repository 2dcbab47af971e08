// Package kmskeys keeps clm's key-encryption keys (KEKs) wrapped by a key
// in a KMS or an HSM, through go.step.sm/crypto/kms: a KEK is 32 random
// bytes, stored only wrapped (RSA-OAEP with SHA-256 under the KMS key's
// public key), and unwrapped by the KMS when the program starts, so that
// the master key never rests in the clear beside the store.
//
//	import _ "go.step.sm/crypto/kms/pkcs11" // or awskms, cloudkms: the backend you use
//
//	km, err := kms.New(ctx, apiv1.Options{URI: "pkcs11:module-path=/usr/lib/softhsm/libsofthsm2.so;token=clm?pin-value=1234"})
//	wrapped, err := kmskeys.Wrap(km, "pkcs11:id=7331;object=clm-kek", nil) // once: keep wrapped (it is no secret)
//	keys, err := kmskeys.Unwrap(km, "pkcs11:id=7331;object=clm-kek", 1, map[uint32][]byte{1: wrapped}, nil)
//	m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys})
//
// The KMS key is an RSA key (2048 bits or more) that can decrypt: a
// PKCS#11 token (pkcs11:...), AWS KMS (awskms:key-id=...) with a key of
// usage ENCRYPT_DECRYPT, or Google Cloud KMS (cloudkms:projects/...) with an
// asymmetric decryption key. Import the backend's package for its side
// effect, as database/sql drivers are; this package links none of them.
// Rotating the KEK is adding a version: Wrap a new one, pass both to
// Unwrap with the new one current, run Engine.Reseal, then drop the old.
package kmskeys

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1"   // OAEP over SHA-1, for tokens that know no other
	_ "crypto/sha256" // the default
	"errors"
	"fmt"

	"go.step.sm/crypto/kms/apiv1"

	"github.com/credlife/clm/lifecycle"
)

// Options configure the wrapping. The zero value means defaults.
type Options struct {
	// Hash is OAEP's hash (and MGF1's); SHA-256 when 0. SoftHSM2 and some
	// tokens decrypt OAEP only over SHA-1, which is sound for OAEP (its
	// security does not rest on the hash's collision resistance).
	Hash crypto.Hash
}

func (o *Options) hash() crypto.Hash {
	if o == nil || o.Hash == 0 {
		return crypto.SHA256
	}
	return o.Hash
}

// KeyManager is what the package needs of a KMS: the public key to wrap
// under, and a decrypter to unwrap with. Every go.step.sm/crypto/kms
// backend that decrypts is one.
type KeyManager interface {
	apiv1.KeyManager
	apiv1.Decrypter
}

// Wrap draws a new KEK from crypto/rand and returns it wrapped under the
// public key of keyURI in km. The KEK itself is not returned: it only ever
// exists unwrapped in the memory of Unwrap's caller.
func Wrap(km apiv1.KeyManager, keyURI string, o *Options) ([]byte, error) {
	pub, err := rsaKey(km, keyURI)
	if err != nil {
		return nil, err
	}
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		return nil, err
	}
	defer clear(kek)
	h := o.hash()
	if !h.Available() {
		return nil, fmt.Errorf("kmskeys: hash %v is not linked in", h)
	}
	wrapped, err := rsa.EncryptOAEP(h.New(), rand.Reader, pub, kek, nil)
	if err != nil {
		return nil, fmt.Errorf("kmskeys: wrapping: %w", err)
	}
	return wrapped, nil
}

// Unwrap unwraps each version's KEK through km's key keyURI and returns a
// KeySource over them, current sealing. The KMS is asked once per version,
// here; the engine then seals and opens from memory.
func Unwrap(km KeyManager, keyURI string, current uint32, wrapped map[uint32][]byte, o *Options) (*lifecycle.StaticKeys, error) {
	if _, err := rsaKey(km, keyURI); err != nil {
		return nil, err
	}
	dec, err := km.CreateDecrypter(&apiv1.CreateDecrypterRequest{DecryptionKey: keyURI})
	if err != nil {
		return nil, fmt.Errorf("kmskeys: %w", err)
	}
	keys := make(map[uint32][]byte, len(wrapped))
	for v, w := range wrapped {
		k, err := dec.Decrypt(rand.Reader, w, &rsa.OAEPOptions{Hash: o.hash()})
		if err != nil {
			return nil, fmt.Errorf("kmskeys: version %d does not unwrap under %s (another KMS key?): %w", v, keyURI, err)
		}
		if len(k) != 32 {
			return nil, fmt.Errorf("kmskeys: version %d unwraps to %d bytes, not a KEK", v, len(k))
		}
		keys[v] = k
	}
	return lifecycle.NewStaticKeys(current, keys)
}

func rsaKey(km apiv1.KeyManager, keyURI string) (*rsa.PublicKey, error) {
	pub, err := km.GetPublicKey(&apiv1.GetPublicKeyRequest{Name: keyURI})
	if err != nil {
		return nil, fmt.Errorf("kmskeys: %s: %w", keyURI, err)
	}
	r, ok := pub.(*rsa.PublicKey)
	if !ok || r.N.BitLen() < 2048 {
		return nil, errors.New("kmskeys: the KMS key must be an RSA key of 2048 bits or more, which can decrypt")
	}
	return r, nil
}
