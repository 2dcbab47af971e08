// Command nocgo opens a store in a program that TestWithoutCgo builds
// with CGO_ENABLED=0, and prints Open's error.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/credlife/clm/backends/sqlitestore"
)

func main() {
	_, err := sqlitestore.Open(context.Background(), filepath.Join(os.TempDir(), "nocgo.db"), nil)
	fmt.Println(errors.Is(err, sqlitestore.ErrNoCgo), err)
}
