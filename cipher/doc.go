// Package cipher holds the symmetric key types of clm: AES with 128-, 192-
// or 256-bit keys and TWINE with 80- or 128-bit keys, as typed values that
// parse and print, with key generation from a CSPRNG and the crypto/cipher
// Block of a key.
//
// Mind the name: this package is not crypto/cipher. Where both are used,
// import this one under another name:
//
//	import clmcipher "github.com/credlife/clm/cipher"
//
// The TWINE block cipher itself is in package cipher/twine, shaped like
// crypto/aes.
package cipher
