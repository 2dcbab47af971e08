package httpadapter

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/credlife/clm/lifecycle"
)

// body is a request body decoded as a JSON object, read field by field in
// the spec's order of checks: every missing field is found before any field
// of the wrong type (spec §3).
type body struct {
	raw       map[string]json.RawMessage
	missing   string // the first required field absent
	malformed string // the first field of the wrong type or form
	overflow  string // the first number out of range
}

// decodeBody reads a JSON object of at most limit bytes. It answers
// CodeSyntax for anything else (not JSON, null, an array, a string,
// trailing data) and CodeOutOfRange for a body over the limit.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64) (*body, lifecycle.Code) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	var raw map[string]json.RawMessage
	err := dec.Decode(&raw)
	if err == nil {
		// Exactly one value: anything but white space after it is an error.
		if _, err2 := dec.Token(); !errors.Is(err2, io.EOF) {
			err = errors.New("trailing data")
		}
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, lifecycle.CodeOutOfRange
	case err != nil || raw == nil:
		return nil, lifecycle.CodeSyntax
	}
	return &body{raw: raw}, lifecycle.CodeOK
}

// get returns the value of the first of names present and not null.
func (b *body) get(names ...string) (json.RawMessage, string, bool) {
	for _, n := range names {
		if v, ok := b.raw[n]; ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return v, n, true
		}
	}
	return nil, names[0], false
}

// has reports whether a field is given: present, not null, and not "".
func (b *body) has(names ...string) bool {
	v, _, ok := b.get(names...)
	if !ok {
		return false
	}
	var s string
	if json.Unmarshal(v, &s) == nil && s == "" {
		return false
	}
	return true
}

// require records the first of the fields (each with its aliases) absent.
func (b *body) require(fields ...[]string) {
	for _, names := range fields {
		if b.missing == "" && !b.has(names...) {
			b.missing = names[0]
		}
	}
}

// requireIf records a missing field when cond holds.
func (b *body) requireIf(cond bool, names ...string) {
	if cond {
		b.require(names)
	}
}

func (b *body) bad(field string) {
	if b.malformed == "" {
		b.malformed = field
	}
}

// str reads a string field; a value of another JSON type is malformed.
func (b *body) str(names ...string) string {
	v, _, ok := b.get(names...)
	if !ok {
		return ""
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		b.bad(names[0])
		return ""
	}
	return s
}

// num reads a number given as a JSON integer or as a string of decimal
// digits; anything else is malformed, and a number past int64 out of range.
// An empty string is absent (0).
func (b *body) num(names ...string) int64 {
	v, _, ok := b.get(names...)
	if !ok {
		return 0
	}
	digits := string(bytes.TrimSpace(v))
	if len(digits) > 0 && digits[0] == '"' {
		if err := json.Unmarshal(v, &digits); err != nil {
			b.bad(names[0])
			return 0
		}
		if digits == "" {
			return 0
		}
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			b.bad(names[0])
			return 0
		}
	}
	if digits == "" {
		b.bad(names[0])
		return 0
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n == 0 { // past int64, or 0, which no number of the protocol takes
		if b.overflow == "" {
			b.overflow = names[0]
		}
		return 0
	}
	return n
}

// extData reads ext_data: an object of string values.
func (b *body) extData() map[string]string {
	v, _, ok := b.get("ext_data")
	if !ok {
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal(v, &m); err != nil || m == nil {
		b.bad("ext_data")
		return nil
	}
	return m
}

// err returns the request's first fault in the spec's order.
func (b *body) err(op string) error {
	switch {
	case b.missing != "":
		return &lifecycle.Error{Code: lifecycle.CodeMissing, Op: op, Field: b.missing}
	case b.malformed != "":
		return &lifecycle.Error{Code: lifecycle.CodeMalformed, Op: op, Field: b.malformed}
	case b.overflow != "":
		return &lifecycle.Error{Code: lifecycle.CodeOutOfRange, Op: op, Field: b.overflow}
	}
	return nil
}

// psk reads keyid and key.
func (b *body) psk() lifecycle.PSKCredentials {
	return lifecycle.PSKCredentials{KeyID: b.str("keyid"), Password: lifecycle.Secret(b.str("key"))}
}

// device reads the device fields.
func (b *body) device() lifecycle.DeviceRequest {
	return lifecycle.DeviceRequest{
		ID:         b.str("deviceid"),
		Name:       b.str("devicename"),
		Key:        lifecycle.Secret(b.str("devicekey")),
		IPAddress:  b.str("ipaddress"),
		MACAddress: b.str("macaddress"),
		ExtData:    b.extData(),
	}
}

// Field names and their aliases (the reference's typos, spec §3).
var (
	fKeyID    = []string{"keyid"}
	fKey      = []string{"key"}
	fTenant   = []string{"tenantid", "tenanted"}
	fAlias    = []string{"alias"}
	fDevID    = []string{"deviceid"}
	fDevName  = []string{"devicename"}
	fCertMode = []string{"certmode"}
	fCAType   = []string{"catype"}
	fKeyFile  = []string{"keyfilepath"}
	fCAFile   = []string{"cafilepath", "caffilepath", "cafepath"}
	fCliFile  = []string{"clientfilepath"}
	fSubject  = []string{"clientsubject"}
	fCSR      = []string{"csr"}
	fPass     = []string{"passphrase"}
	fFilePath = []string{"filepath"}
	fKeyType  = []string{"keytype"}
	fCKFile   = []string{"commonkeyfilepath"}
	fKeyNum   = []string{"keynumber"}
	fComKey   = []string{"commonkey"}
)
