package twine_test

import (
	"encoding/hex"
	"fmt"

	"github.com/credlife/clm/cipher/twine"
)

// The 80-bit test vector of the TWINE paper.
func ExampleNewCipher() {
	key, _ := hex.DecodeString("00112233445566778899")
	block, err := twine.NewCipher(key)
	if err != nil {
		panic(err)
	}
	pt, _ := hex.DecodeString("0123456789ABCDEF")
	ct := make([]byte, twine.BlockSize)
	block.Encrypt(ct, pt)
	fmt.Printf("%X\n", ct)
	// Output: 7C1F0F80B1DF9C28
}
