package lifecycle_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
)

func b64(fill byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, 32)) }

func TestKeysFromEnv(t *testing.T) {
	ctx := context.Background()
	t.Run("OneKey", func(t *testing.T) {
		t.Setenv("TEST_KEK", b64(1))
		k, err := lifecycle.KeysFromEnv("TEST_KEK")
		if err != nil {
			t.Fatal(err)
		}
		if cur, _ := k.CurrentKEK(ctx); cur.Version != 1 || !bytes.Equal(cur.Key, bytes.Repeat([]byte{1}, 32)) {
			t.Fatalf("one key is version 1: %v", cur)
		}
	})
	t.Run("Versions", func(t *testing.T) {
		t.Setenv("TEST_KEK", "1:"+b64(1)+", 3:"+b64(3))
		k, err := lifecycle.KeysFromEnv("TEST_KEK")
		if err != nil {
			t.Fatal(err)
		}
		cur, _ := k.CurrentKEK(ctx)
		old, err := k.KEK(ctx, 1)
		if cur.Version != 3 || err != nil || old.Key[0] != 1 {
			t.Fatalf("the highest version seals, the others open: current %d, version 1: %v", cur.Version, err)
		}
	})
	for name, v := range map[string]string{
		"NotBase64": "not-a-key", "Short": base64.StdEncoding.EncodeToString([]byte("short")),
		"VersionZero": "0:" + b64(1), "Twice": "1:" + b64(1) + ",1:" + b64(2), "Unversioned": b64(1) + "," + b64(2),
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("TEST_KEK", v)
			_, err := lifecycle.KeysFromEnv("TEST_KEK")
			if err == nil || !strings.Contains(err.Error(), "TEST_KEK") || strings.Contains(err.Error(), b64(1)) {
				t.Fatalf("a bad value must be refused naming the variable and never its value: %v", err)
			}
		})
	}
	t.Run("Unset", func(t *testing.T) {
		if _, err := lifecycle.KeysFromEnv("TEST_KEK_UNSET"); err == nil {
			t.Fatal("an unset variable must be an error")
		}
	})
}

func TestKeysFromDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, name), mode)
	}
	if _, err := lifecycle.KeysFromDir(dir); err == nil {
		t.Fatal("a directory without key files must be an error")
	}
	write("1.key", b64(1), 0o600)
	write("2.key", b64(2), 0o600)
	write("README", "not a key", 0o644)
	k, err := lifecycle.KeysFromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := k.CurrentKEK(ctx); cur.Version != 2 {
		t.Fatalf("the highest version seals: %d", cur.Version)
	}
	if _, err := k.KEK(ctx, 1); err != nil {
		t.Fatal("an older version opens")
	}
	write("3.key", b64(3), 0o644)
	if _, err := lifecycle.KeysFromDir(dir); err == nil || !strings.Contains(err.Error(), "3.key") {
		t.Fatalf("a key file others may read must be refused: %v", err)
	}
}

// TestWrongMasterKey: a store opened with another master key says so.
func TestWrongMasterKey(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	right, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{1}, 32)})
	wrong, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{2}, 32)})
	newer, _ := lifecycle.NewStaticKeys(2, map[uint32][]byte{2: bytes.Repeat([]byte{1}, 32)})
	m := newEngine(t, s, &lifecycle.Options{Keys: right})
	if err := m.CheckKeys(ctx); err != nil {
		t.Fatalf("an empty store passes: %v", err)
	}
	if _, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := m.CheckKeys(ctx); err != nil {
		t.Fatalf("the right key passes: %v", err)
	}
	for name, k := range map[string]*lifecycle.StaticKeys{"SameVersion": wrong, "OtherVersion": newer} {
		t.Run(name, func(t *testing.T) {
			err := newEngine(t, s, &lifecycle.Options{Keys: k}).CheckKeys(ctx)
			if !errors.Is(err, lifecycle.ErrWrongMasterKey) || !errors.Is(err, lifecycle.CodeDecrypt) ||
				!strings.Contains(err.Error(), "this store was sealed with a different master key") || !strings.Contains(err.Error(), "version 1") {
				t.Fatalf("got %v", err)
			}
		})
	}
	if _, err := ca.Open(ctx, s, right, nil); err != nil {
		t.Fatal(err)
	}
	_, err := ca.Open(ctx, s, wrong, nil)
	if !errors.Is(err, lifecycle.ErrWrongMasterKey) || !strings.Contains(err.Error(), "different master key, version 1") {
		t.Fatalf("ca.Open with the wrong master key: %v", err)
	}
}
