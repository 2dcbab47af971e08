// Package hsm gives the local CA a key held in a PKCS#11 token (an HSM,
// SoftHSM2, a smart card) through go.step.sm/crypto/kms/pkcs11: the CA signs
// certificates and CRLs in the token, and its private key never leaves it.
//
//	signer, closeFn, err := hsm.Signer(ctx, "pkcs11:module-path=/usr/lib/softhsm/libsofthsm2.so;token=clm?pin-value=1234",
//		"pkcs11:id=7301;object=clm-ca1", lifecycle.KeyECP256)
//	ca1, err := ca.Open(ctx, store, keys, &ca.Options{Name: "ca1", Signer: signer})
//
// This package links cgo and the PKCS#11 library loader; it is its own
// package so that programs without an HSM do not.
package hsm

import (
	"context"
	"crypto"
	"errors"
	"fmt"

	"go.step.sm/crypto/kms/apiv1"
	"go.step.sm/crypto/kms/pkcs11"

	"github.com/credlife/clm/lifecycle"
)

var algorithms = map[lifecycle.CertKeyType]apiv1.SignatureAlgorithm{
	lifecycle.KeyECP256:  apiv1.ECDSAWithSHA256,
	lifecycle.KeyECP384:  apiv1.ECDSAWithSHA384,
	lifecycle.KeyRSA2048: apiv1.SHA256WithRSA,
	lifecycle.KeyRSA3072: apiv1.SHA256WithRSA,
	lifecycle.KeyRSA4096: apiv1.SHA256WithRSA,
}

// Signer opens the PKCS#11 module named by moduleURI and returns a
// crypto.Signer for the key keyURI names, creating the key (of type kt) in
// the token if it is not there. close releases the module.
func Signer(ctx context.Context, moduleURI, keyURI string, kt lifecycle.CertKeyType) (crypto.Signer, func() error, error) {
	alg, ok := algorithms[kt]
	if !ok {
		return nil, nil, fmt.Errorf("hsm: key type %q is not available through PKCS#11 here", kt)
	}
	k, err := pkcs11.New(ctx, apiv1.Options{Type: apiv1.PKCS11, URI: moduleURI})
	if err != nil {
		return nil, nil, fmt.Errorf("hsm: %w", err)
	}
	if _, err := k.GetPublicKey(&apiv1.GetPublicKeyRequest{Name: keyURI}); err != nil {
		req := &apiv1.CreateKeyRequest{Name: keyURI, SignatureAlgorithm: alg}
		if alg == apiv1.SHA256WithRSA {
			req.Bits = kt.Bits()
		}
		if _, err := k.CreateKey(req); err != nil {
			k.Close()
			return nil, nil, fmt.Errorf("hsm: creating the key: %w", err)
		}
	}
	s, err := k.CreateSigner(&apiv1.CreateSignerRequest{SigningKey: keyURI})
	if err != nil {
		k.Close()
		return nil, nil, fmt.Errorf("hsm: %w", err)
	}
	if s == nil {
		k.Close()
		return nil, nil, errors.New("hsm: no signer")
	}
	return s, k.Close, nil
}
