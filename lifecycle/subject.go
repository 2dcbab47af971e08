package lifecycle

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// MaxSubjectLen is the limit of a subject's text, in bytes (spec §6).
const MaxSubjectLen = 512

// ErrSubjectSyntax is wrapped by ParseSubject's errors of form (CLM code
// 1103); ErrSubjectLimit by its errors of length (1104).
var (
	ErrSubjectSyntax = errors.New("malformed subject")
	ErrSubjectLimit  = errors.New("subject attribute too long")
)

// Subject is a certificate subject parsed from the protocol's text form.
type Subject struct {
	// Attributes in the order given.
	Attributes []SubjectAttribute
}

// SubjectAttribute is one attribute of a subject: its short name (C, ST, L,
// O, OU, CN) and its value.
type SubjectAttribute struct {
	Name, Value string
}

var subjectOIDs = map[string]asn1.ObjectIdentifier{
	"C":  {2, 5, 4, 6},
	"ST": {2, 5, 4, 8},
	"L":  {2, 5, 4, 7},
	"O":  {2, 5, 4, 10},
	"OU": {2, 5, 4, 11},
	"CN": {2, 5, 4, 3},
}

// upper bounds of RFC 5280, Appendix A.1, in characters.
var subjectBounds = map[string]int{"C": 2, "ST": 128, "L": 128, "O": 64, "OU": 64, "CN": 64}

// ParseSubject parses a subject written /C=../ST=../L=../O=../OU=../CN=..:
// any of those attributes, each at most once, in any order, CN required; a
// slash inside a value is written \/ and a backslash \\. Values are UTF-8,
// not empty, within the bounds of RFC 5280 (CN, O, OU 64 characters; L, ST
// 128; C two letters).
func ParseSubject(s string) (*Subject, error) {
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return nil, errors.Join(ErrSubjectSyntax, errors.New("not UTF-8 text"))
	}
	if len(s) > MaxSubjectLen {
		return nil, errors.Join(ErrSubjectLimit, errors.New("longer than 512 bytes"))
	}
	if !strings.HasPrefix(s, "/") {
		return nil, errors.Join(ErrSubjectSyntax, errors.New("must start with /"))
	}
	// Split on unescaped slashes.
	var parts []string
	var cur strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			if i+1 >= len(s) || (s[i+1] != '/' && s[i+1] != '\\') {
				return nil, errors.Join(ErrSubjectSyntax, errors.New(`a backslash escapes only / or \`))
			}
			cur.WriteByte(s[i+1])
			i++
		case c == '/':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	parts = append(parts, cur.String())
	sub := &Subject{}
	seen := map[string]bool{}
	for _, p := range parts {
		name, value, ok := strings.Cut(p, "=")
		if !ok || value == "" {
			return nil, errors.Join(ErrSubjectSyntax, errors.New("each part is NAME=value"))
		}
		bound, known := subjectBounds[name]
		if !known {
			return nil, errors.Join(ErrSubjectSyntax, errors.New("attributes are C, ST, L, O, OU and CN"))
		}
		if seen[name] {
			return nil, errors.Join(ErrSubjectSyntax, errors.New("an attribute is repeated"))
		}
		seen[name] = true
		if name == "C" {
			if len(value) != 2 || !isUpperAlpha(value) {
				return nil, errors.Join(ErrSubjectSyntax, errors.New("the country (C) is a two-letter code"))
			}
		} else if utf8.RuneCountInString(value) > bound {
			return nil, errors.Join(ErrSubjectLimit, errors.New(name+" is longer than RFC 5280 allows"))
		}
		sub.Attributes = append(sub.Attributes, SubjectAttribute{name, value})
	}
	if !seen["CN"] {
		return nil, errors.Join(ErrSubjectSyntax, errors.New("CN is required"))
	}
	return sub, nil
}

func isUpperAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// CommonName returns the CN.
func (s *Subject) CommonName() string {
	for _, a := range s.Attributes {
		if a.Name == "CN" {
			return a.Value
		}
	}
	return ""
}

// String writes the subject in the protocol's form, escaping slashes.
func (s *Subject) String() string {
	var b strings.Builder
	for _, a := range s.Attributes {
		b.WriteString("/" + a.Name + "=")
		b.WriteString(strings.NewReplacer(`\`, `\\`, "/", `\/`).Replace(a.Value))
	}
	return b.String()
}

// RDNSequence returns the subject as an X.501 name in the order given, each
// value a PrintableString where it fits and a UTF8String otherwise.
func (s *Subject) RDNSequence() pkix.RDNSequence {
	seq := make(pkix.RDNSequence, 0, len(s.Attributes))
	for _, a := range s.Attributes {
		seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: subjectOIDs[a.Name], Value: a.Value}})
	}
	return seq
}

// SANs returns what the CN adds to the subjectAltName: an IP address, or a
// DNS name, when the CN is one.
func (s *Subject) SANs() (dns []string, ips []netip.Addr) {
	cn := s.CommonName()
	if a, err := netip.ParseAddr(cn); err == nil && a.Zone() == "" {
		return nil, []netip.Addr{a}
	}
	if isDNSName(cn) {
		return []string{strings.ToLower(cn)}, nil
	}
	return nil, nil
}

// isDNSName reports whether s is a host name: dot-separated labels of
// letters, digits and hyphens (1 to 63 characters, no hyphen at either end),
// at most 253 characters, optionally with a leading "*." wildcard label.
func isDNSName(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	if s == "" || len(s) > 253 {
		return false
	}
	allDigits := true
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				allDigits = false
			default:
				return false
			}
		}
	}
	return !allDigits
}
