// Package ca will hold the certificate authorities that sign certificates
// and CRLs for the lifecycle engine: a local CA built on go.step.sm/crypto,
// its key sealed at rest and usable through any crypto.Signer (a KMS or HSM
// key included).
//
// It is empty for now: certificate issuance is not implemented yet, and the
// engine's certificate methods answer lifecycle.ErrNotImplemented.
package ca
