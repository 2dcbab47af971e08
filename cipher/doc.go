// Package cipher will hold the symmetric key types of clm (AES-128/192/256
// and TWINE-80/128) with their generation and parsing; the TWINE block cipher
// itself will live in cipher/twine, shaped like crypto/aes.
//
// Mind the name: this package is not crypto/cipher. Import it under another
// name where both are used, for example
//
//	import clmcipher "github.com/credlife/clm/cipher"
//
// It is empty for now: the symmetric-key lifecycle is not implemented yet,
// and the engine's key methods answer lifecycle.ErrNotImplemented.
package cipher
