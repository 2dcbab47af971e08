package lifecycle

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// KeysFromEnv reads key-encryption keys from the environment variable
// name: either one key, base64 of 32 bytes (version 1), or versioned keys
// for a rotation, "VERSION:BASE64,VERSION:BASE64,...", of which the highest
// version seals. The error names the variable, never its value.
func KeysFromEnv(name string) (*StaticKeys, error) {
	v, ok := os.LookupEnv(name)
	if !ok || strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("clm: %s is not set", name)
	}
	keys := map[uint32][]byte{}
	for i, part := range strings.Split(strings.TrimSpace(v), ",") {
		ver, b64, versioned := strings.Cut(strings.TrimSpace(part), ":")
		if !versioned {
			if i > 0 || strings.Contains(v, ",") {
				return nil, fmt.Errorf("clm: %s: several keys must each be VERSION:BASE64", name)
			}
			ver, b64 = "1", part
		}
		n, err := strconv.ParseUint(ver, 10, 32)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("clm: %s: key %d: a version is a number from 1", name, i+1)
		}
		if _, dup := keys[uint32(n)]; dup {
			return nil, fmt.Errorf("clm: %s: version %d is given twice", name, n)
		}
		k, err := decodeKEK(b64)
		if err != nil {
			return nil, fmt.Errorf("clm: %s: version %d: %w", name, n, err)
		}
		keys[uint32(n)] = k
	}
	return NewStaticKeys(highest(keys), keys)
}

// KeysFromDir reads key-encryption keys from the files VERSION.key of dir
// (each base64 of 32 bytes; white space around it ignored), of which the
// highest version seals: to rotate, add the next version's file, run
// Engine.Reseal, then remove the old file. A key file that others than its
// owner may read or write is refused.
func KeysFromDir(dir string) (*StaticKeys, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("clm: key directory: %w", err)
	}
	keys := map[uint32][]byte{}
	for _, ent := range entries {
		ver, ok := strings.CutSuffix(ent.Name(), ".key")
		n, err := strconv.ParseUint(ver, 10, 32)
		if !ok || err != nil || n == 0 || ent.IsDir() {
			continue
		}
		path := filepath.Join(dir, ent.Name())
		info, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("clm: %w", err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("clm: %s may be read or written by others than its owner (mode %v): chmod 600 it", path, info.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("clm: %w", err)
		}
		if keys[uint32(n)], err = decodeKEK(strings.TrimSpace(string(b))); err != nil {
			return nil, fmt.Errorf("clm: %s: %w", path, err)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("clm: %s holds no key file (VERSION.key, base64 of 32 bytes)", dir)
	}
	return NewStaticKeys(highest(keys), keys)
}

func decodeKEK(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(k) != 32 {
		return nil, errors.New("want base64 of 32 bytes")
	}
	return k, nil
}

func highest(keys map[uint32][]byte) uint32 {
	var h uint32
	for v := range keys {
		h = max(h, v)
	}
	return h
}
