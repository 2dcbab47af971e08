package lifecycle

import (
	"fmt"
	"log/slog"
)

const redacted = "[REDACTED]"

// Secret is a secret text: a PSK password, a device key, a passphrase, a PEM
// private key. It never prints: fmt (every verb), log/slog and encoding/json
// all show "[REDACTED]". Reveal (or a conversion to string) gives the text.
type Secret string

// Reveal returns the secret text.
func (s Secret) Reveal() string { return string(s) }

// String returns "[REDACTED]".
func (Secret) String() string { return redacted }

// GoString returns "[REDACTED]".
func (Secret) GoString() string { return redacted }

// Format writes "[REDACTED]" whatever the verb.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue makes log/slog print "[REDACTED]".
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes "[REDACTED]"; encode Reveal() where the secret must go
// on the wire.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// SecretBytes is secret binary data: a symmetric key, a PKCS#12 file. Like
// Secret it never prints; Reveal (or a conversion to []byte) gives the bytes.
type SecretBytes []byte

// Reveal returns the secret bytes (not a copy).
func (s SecretBytes) Reveal() []byte { return []byte(s) }

// String returns "[REDACTED]".
func (SecretBytes) String() string { return redacted }

// GoString returns "[REDACTED]".
func (SecretBytes) GoString() string { return redacted }

// Format writes "[REDACTED]" whatever the verb.
func (SecretBytes) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue makes log/slog print "[REDACTED]".
func (SecretBytes) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes "[REDACTED]".
func (SecretBytes) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
