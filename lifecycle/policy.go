package lifecycle

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Policy restricts what a CA issues, as Vault's roles, step-ca's policy
// engine and cfssl's profiles do: which keys, for how long, for what use,
// and under which names. It applies alike to certificates with a key made
// on the server (IssueCertificate, RenewCertificate), to certificates for a
// device's own key (IssueCertificateFromCSR) and to EST enrolment. A
// request that breaks a rule answers CodeMalformed (HTTP 400, 1103) with a
// *PolicyError naming the rule; nothing is issued.
//
// The zero Policy is the default: it keeps the protocol's behaviour for
// well-formed requests (any key type the engine issues, the engine's
// validity, digitalSignature (+ keyEncipherment for RSA) with serverAuth and
// clientAuth, a CN that is a DNS name or IP address copied into the
// subjectAltName) and refuses wildcards.
type Policy struct {
	// KeyTypes are the key types allowed; every type the engine issues
	// when empty.
	KeyTypes []CertKeyType
	// MaxValidity caps a certificate's validity (the engine's
	// CertValidity); no cap when 0. A certificate never outlives its CA.
	MaxValidity time.Duration
	// KeyUsage of issued certificates; digitalSignature, and
	// keyEncipherment for an RSA key, when 0.
	KeyUsage x509.KeyUsage
	// ExtKeyUsage of issued certificates; serverAuth and clientAuth when
	// empty.
	ExtKeyUsage []x509.ExtKeyUsage

	// DNSSuffixes, when set, confine DNS names (in the subjectAltName, and
	// a CN that is a DNS name) to these domains and their subdomains:
	// "example.com" allows example.com and a.b.example.com. Any name when
	// empty.
	DNSSuffixes []string
	// DenyIPAddresses refuses IP addresses in the subjectAltName (and a CN
	// that is one).
	DenyIPAddresses bool
	// AllowWildcards allows a wildcard ("*.") DNS name, in the CN or the
	// subjectAltName; refused when false.
	AllowWildcards bool
	// OmitCNFromSAN stops copying a CN that is a DNS name or an IP address
	// into the subjectAltName.
	OmitCNFromSAN bool

	// RequiredSubject names subject attributes (C, ST, L, O, OU) that a
	// request must carry.
	RequiredSubject []string
	// FixedSubject sets subject attributes (C, ST, L, O, OU) to fixed
	// values, whatever the request asked; the value PolicyTenant stands for
	// the requesting tenant's id.
	FixedSubject map[string]string
}

// PolicyTenant, as a value of Policy.FixedSubject, stands for the tenant of
// the request: FixedSubject{"O": PolicyTenant} puts each tenant's id in O.
const PolicyTenant = "{tenant}"

// PolicyScope says where a Policy applies: to one CA's certificates, to one
// tenant's, or to one tenant's from one CA. "" matches any.
type PolicyScope struct {
	CA     string
	Tenant string
}

// PolicyError is the cause of a request refused by a Policy. Rule is the
// Policy field that refused it ("KeyTypes", "DNSSuffixes", ...).
type PolicyError struct {
	Rule   string
	Reason string
}

func (e *PolicyError) Error() string { return "policy " + e.Rule + ": " + e.Reason }

func policyErr(rule, format string, args ...any) *PolicyError {
	return &PolicyError{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// Validate reports a policy that cannot be applied: an unknown key type
// or subject attribute, a fixed value out of bounds, a malformed suffix.
func (p *Policy) Validate() error {
	for _, kt := range p.KeyTypes {
		if !kt.Valid() {
			return policyErr("KeyTypes", "unknown key type %q", kt)
		}
	}
	if p.MaxValidity < 0 {
		return policyErr("MaxValidity", "negative")
	}
	for _, s := range p.DNSSuffixes {
		if !isDNSName(s) || strings.HasPrefix(s, "*") {
			return policyErr("DNSSuffixes", "%q is not a domain name", s)
		}
	}
	for _, a := range p.RequiredSubject {
		if _, ok := subjectBounds[a]; !ok || a == "CN" {
			return policyErr("RequiredSubject", "%q is not C, ST, L, O or OU", a)
		}
	}
	for a, v := range p.FixedSubject {
		if _, ok := subjectBounds[a]; !ok || a == "CN" {
			return policyErr("FixedSubject", "%q is not C, ST, L, O or OU", a)
		}
		if v == "" {
			return policyErr("FixedSubject", "the value of %s is empty", a)
		}
	}
	return nil
}

// policyFor returns the policy of a CA and tenant: the most specific of
// the engine's policies ({CA, Tenant}, {CA}, {Tenant}, {}) or the default.
func (e *Engine) policyFor(ca, tenant string) *Policy {
	for _, s := range []PolicyScope{{ca, tenant}, {CA: ca}, {Tenant: tenant}, {}} {
		if p, ok := e.policies[s]; ok {
			return p
		}
	}
	return &e.defaultPolicy
}

// leafSpec is what a policy decided of a certificate to be issued.
type leafSpec struct {
	subject  *Subject
	raw      []byte // the subject's DER, when it is kept as it was (renewal)
	rawText  string // and its text
	dns      []string
	ips      []net.IP
	usage    x509.KeyUsage
	ext      []x509.ExtKeyUsage
	validity time.Duration
}

// text is the subject as the record keeps it.
func (s *leafSpec) text() string {
	if s.raw != nil {
		return s.rawText
	}
	return s.subject.String()
}

// names are a request's subject and subjectAltName entries.
type names struct {
	subject *Subject
	dns     []string     // from the CSR (or the certificate renewed)
	ips     []netip.Addr // from the CSR (or the certificate renewed)
	// cnInSAN says the request's SANs already hold the CN's (renewal).
	cnInSAN bool
	// keepSubject says the subject is kept as it is (renewal): the
	// subject rules are not applied again.
	keepSubject bool
}

// apply checks a request against the policy and returns what to issue.
func (p *Policy) apply(tenant string, kt CertKeyType, n names, certValidity time.Duration) (*leafSpec, error) {
	if len(p.KeyTypes) > 0 && !slices.Contains(p.KeyTypes, kt) {
		return nil, policyErr("KeyTypes", "%s keys are not allowed", kt)
	}
	sub := &Subject{Attributes: slices.Clone(n.subject.Attributes)}
	if n.keepSubject {
		return p.checkNames(kt, sub, n, certValidity)
	}
	for _, a := range p.RequiredSubject {
		if sub.get(a) == "" && p.FixedSubject[a] == "" {
			return nil, policyErr("RequiredSubject", "the subject must have %s", a)
		}
	}
	for _, a := range []string{"C", "ST", "L", "O", "OU"} {
		v, ok := p.FixedSubject[a]
		if !ok {
			continue
		}
		if v == PolicyTenant {
			v = tenant
		}
		sub.set(a, v)
	}
	if _, err := ParseSubject(sub.String()); err != nil {
		return nil, policyErr("FixedSubject", "the fixed subject is not valid: %v", err)
	}
	return p.checkNames(kt, sub, n, certValidity)
}

// checkNames applies the rules of names, usages and validity.
func (p *Policy) checkNames(kt CertKeyType, sub *Subject, n names, certValidity time.Duration) (*leafSpec, error) {
	dns, ips := slices.Clone(n.dns), slices.Clone(n.ips)
	if !p.OmitCNFromSAN && !n.cnInSAN {
		cd, ci := sub.SANs()
		for _, d := range cd {
			if !slices.Contains(dns, d) {
				dns = append(dns, d)
			}
		}
		for _, a := range ci {
			if !slices.Contains(ips, a) {
				ips = append(ips, a)
			}
		}
	}
	// The CN is checked as a name whether or not it goes into the SAN.
	cn := sub.CommonName()
	if strings.Contains(cn, "*") && !p.AllowWildcards {
		return nil, policyErr("AllowWildcards", "a wildcard (*) name is refused")
	}
	checked := slices.Clone(dns)
	if isDNSName(cn) {
		checked = append(checked, strings.ToLower(cn))
	}
	for _, d := range checked {
		if strings.Contains(d, "*") {
			if !p.AllowWildcards {
				return nil, policyErr("AllowWildcards", "a wildcard (*) name is refused")
			}
			if !strings.HasPrefix(d, "*.") || strings.Count(d, "*") != 1 {
				return nil, policyErr("AllowWildcards", "a wildcard is only a whole leftmost label (*.)")
			}
		}
		if len(p.DNSSuffixes) > 0 && !underSuffix(d, p.DNSSuffixes) {
			return nil, policyErr("DNSSuffixes", "the DNS name %q is not under an allowed domain", d)
		}
	}
	if _, err := netip.ParseAddr(cn); (err == nil || len(ips) > 0) && p.DenyIPAddresses {
		return nil, policyErr("DenyIPAddresses", "IP addresses are refused")
	}
	spec := &leafSpec{subject: sub, dns: dns, usage: p.KeyUsage, ext: p.ExtKeyUsage, validity: certValidity}
	for _, a := range ips {
		spec.ips = append(spec.ips, a.AsSlice())
	}
	if spec.usage == 0 {
		spec.usage = x509.KeyUsageDigitalSignature
		if kt.isRSA() {
			spec.usage |= x509.KeyUsageKeyEncipherment
		}
	}
	if len(spec.ext) == 0 {
		spec.ext = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	if p.MaxValidity > 0 && spec.validity > p.MaxValidity {
		spec.validity = p.MaxValidity
	}
	return spec, nil
}

// underSuffix reports whether a DNS name (a wildcard's base) is one of the
// domains or under one.
func underSuffix(name string, suffixes []string) bool {
	name = strings.TrimPrefix(strings.ToLower(name), "*.")
	for _, s := range suffixes {
		s = strings.ToLower(strings.TrimSuffix(s, "."))
		if name == s || strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	return false
}

// get returns an attribute's value, or "".
func (s *Subject) get(name string) string {
	for _, a := range s.Attributes {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

// set sets an attribute, replacing it in place or adding it before the CN.
func (s *Subject) set(name, value string) {
	for i, a := range s.Attributes {
		if a.Name == name {
			s.Attributes[i].Value = value
			return
		}
	}
	at := len(s.Attributes)
	for i, a := range s.Attributes {
		if a.Name == "CN" {
			at = i
			break
		}
	}
	s.Attributes = slices.Insert(s.Attributes, at, SubjectAttribute{name, value})
}

// policyFail makes a policy's refusal an error of the request: CodeMalformed
// naming keyField for a refused key type and nameField for anything else.
func policyFail(op string, err error, keyField, nameField string) error {
	var pe *PolicyError
	if !errors.As(err, &pe) {
		return err
	}
	field := nameField
	if pe.Rule == "KeyTypes" {
		field = keyField
	}
	return errf(op, CodeMalformed, field, pe)
}
