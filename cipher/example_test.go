package cipher_test

import (
	"crypto/rand"
	"fmt"

	clmcipher "github.com/credlife/clm/cipher"
)

func Example() {
	kt, err := clmcipher.ParseKeyType("TWINE-80")
	if err != nil {
		panic(err)
	}
	key, _ := clmcipher.GenerateKey(rand.Reader, kt)
	block, _ := clmcipher.NewBlock(kt, key)
	fmt.Println(kt, "key bytes:", len(key), "block bytes:", block.BlockSize())

	_, err = clmcipher.NewKeyType(clmcipher.TWINE, 256)
	fmt.Println(err)
	// Output:
	// TWINE-80 key bytes: 10 block bytes: 8
	// cipher: key length not defined for the algorithm: TWINE-256
}
