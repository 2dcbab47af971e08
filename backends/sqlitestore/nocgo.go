//go:build !cgo

package sqlitestore

import "github.com/credlife/clm/backends/gormstore"

// Without cgo there is no SQLite: Open answers ErrNoCgo before these run.
const cgoEnabled = false

func register() {}

func classify(error) gormstore.Class { return gormstore.ClassOther }
