package lifecycle

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// check validates a request in the spec's order: every field's presence
// (1102), then every field's form (1103), then every field's limits (1104),
// whatever order the fields are visited in. The first failure of the
// earliest stage is the answer.
type check struct {
	op                           string
	missing, malformed, overflow *Error
}

func newCheck(op string) *check { return &check{op: op} }

// require records a missing field.
func (c *check) require(field string, present bool) {
	if !present && c.missing == nil {
		c.missing = fieldErr(c.op, CodeMissing, field, "required")
	}
}

// format records a malformed field.
func (c *check) format(field string, ok bool, why string) {
	if !ok && c.malformed == nil {
		c.malformed = fieldErr(c.op, CodeMalformed, field, why)
	}
}

// limit records a field out of its limits.
func (c *check) limit(field string, ok bool, why string) {
	if !ok && c.overflow == nil {
		c.overflow = fieldErr(c.op, CodeOutOfRange, field, why)
	}
}

// text checks a text field: valid UTF-8 without NUL, at most max bytes.
func (c *check) text(field, v string, max int) {
	c.format(field, utf8.ValidString(v) && strings.IndexByte(v, 0) < 0, "not valid UTF-8 text")
	c.limit(field, len(v) <= max, "longer than "+strconv.Itoa(max)+" bytes")
}

// identifier checks a name that the store compares byte for byte (a
// tenant): no leading or trailing white space and no control character, so
// that two names that look alike are never two spellings of one.
func (c *check) identifier(field, v string) {
	c.format(field, v == strings.TrimSpace(v), "has leading or trailing white space")
	c.format(field, strings.IndexFunc(v, unicode.IsControl) < 0, "has a control character")
}

// psk checks the keyid and password of a device request.
func (c *check) psk(p PSKCredentials) {
	c.require("keyid", p.KeyID != "")
	c.require("key", p.Password != "")
	if p.KeyID != "" {
		_, err := ParseKeyID(p.KeyID)
		c.format("keyid", err == nil, "must be 1 to 10 decimal digits")
	}
	c.limit("key", len(p.Password) <= 1024, "longer than 1024 bytes")
}

// number checks a positive record number (keynumber and the like); 0 is
// absent.
func (c *check) number(field string, n int64, required bool) {
	if required {
		c.require(field, n != 0)
	}
	c.format(field, n >= 0, "must be a positive number")
}

func (c *check) err() error {
	switch {
	case c.missing != nil:
		return c.missing
	case c.malformed != nil:
		return c.malformed
	case c.overflow != nil:
		return c.overflow
	}
	return nil
}
