package lifecycle_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/credlife/clm/lifecycle"
)

// TestSecretsNeverPrint formats secrets every way a program might print
// them, alone and inside the structs that carry them.
func TestSecretsNeverPrint(t *testing.T) {
	const plain = "s3cr3t-PLAINTEXT"
	psk := &lifecycle.PSK{KeyID: "0000000001", Password: lifecycle.Secret(plain)}
	key := lifecycle.KeyResult{Key: lifecycle.SecretBytes(plain)}
	kek := lifecycle.KEK{Version: 1, Key: []byte(plain + plain)}
	values := map[string]any{
		"Secret": lifecycle.Secret(plain), "SecretBytes": lifecycle.SecretBytes(plain),
		"*PSK": psk, "KeyResult": key, "KEK": kek,
		"PSKCredentials": lifecycle.PSKCredentials{KeyID: "1", Password: plain},
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
				fmt.Fprintf(&out, verb+"\n", v)
			}
			j, _ := json.Marshal(v)
			out.Write(j)
			slog.New(slog.NewTextHandler(&out, nil)).Info("m", "v", v)
			slog.New(slog.NewJSONHandler(&out, nil)).Info("m", "v", v)
			for _, form := range []string{plain, fmt.Sprintf("%x", plain), fmt.Sprintf("%X", plain)} {
				if strings.Contains(out.String(), form) {
					t.Fatalf("a secret was printed:\n%s", out.String())
				}
			}
			if !strings.Contains(out.String(), "[REDACTED]") {
				t.Fatalf("a secret should print as [REDACTED]:\n%s", out.String())
			}
		})
	}
	if lifecycle.Secret(plain).Reveal() != plain || string(lifecycle.SecretBytes(plain).Reveal()) != plain {
		t.Fatal("Reveal must return the secret")
	}
}
