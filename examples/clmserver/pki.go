package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.step.sm/crypto/pemutil"

	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// openCAs opens the CAs of -cas: after importing the first from
// -ca-import-chain when the store has none of its name, and, with
// -ca-root, creating new ones as intermediates under that root.
func openCAs(ctx context.Context, store driver.Store, keys lifecycle.KeySource, c config) ([]lifecycle.CA, error) {
	names := strings.Split(c.cas, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	if c.caImportChain != "" {
		if err := importCA(ctx, store, keys, names[0], c.caImportChain, c.caImportKey); err != nil {
			return nil, err
		}
	}
	var root *ca.CA
	if c.caRoot != "" {
		var err error
		if root, err = ca.Open(ctx, store, keys, &ca.Options{Name: c.caRoot, Root: true}); err != nil {
			return nil, err
		}
	}
	var cas []lifecycle.CA
	for _, name := range names {
		if name == c.caRoot {
			return nil, fmt.Errorf("-cas names the root %q: a root certifies intermediates and issues to no device", name)
		}
		x, err := ca.Open(ctx, store, keys, &ca.Options{Name: name, Issuer: root, DelegatedOCSP: c.delegatedOCSP})
		if err != nil {
			return nil, err
		}
		cas = append(cas, x)
	}
	return cas, nil
}

// importCA imports an intermediate from a PEM chain and key, unless the
// store has a CA of that name already.
func importCA(ctx context.Context, store driver.Store, keys lifecycle.KeySource, name, chainFile, keyFile string) error {
	have, err := store.ListCredentials(ctx, driver.CredentialQuery{CA: name, Kind: driver.KindCACertificate, Limit: 1})
	if err != nil {
		return err
	}
	if len(have) > 0 {
		return nil // imported before
	}
	chain, err := pemutil.ReadCertificateBundle(chainFile)
	if err != nil {
		return fmt.Errorf("-ca-import-chain: %w", err)
	}
	if keyFile == "" {
		return errors.New("-ca-import-chain needs -ca-import-key")
	}
	k, err := pemutil.Read(keyFile)
	if err != nil {
		return fmt.Errorf("-ca-import-key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return errors.New("-ca-import-key: not a private key")
	}
	return ca.Import(ctx, store, keys, name, chain, signer)
}

// policyFile is the JSON of -policy-file.
type policyFile struct {
	Policies []struct {
		CA              string            `json:"ca"`
		Tenant          string            `json:"tenant"`
		KeyTypes        []string          `json:"key_types"`
		MaxValidity     string            `json:"max_validity"` // a Go duration, "720h"
		ExtKeyUsage     []string          `json:"ext_key_usage"`
		DNSSuffixes     []string          `json:"dns_suffixes"`
		DenyIPAddresses bool              `json:"deny_ip_addresses"`
		AllowWildcards  bool              `json:"allow_wildcards"`
		OmitCNFromSAN   bool              `json:"omit_cn_from_san"`
		RequiredSubject []string          `json:"required_subject"`
		FixedSubject    map[string]string `json:"fixed_subject"`
	} `json:"policies"`
}

var extKeyUsages = map[string]x509.ExtKeyUsage{
	"serverAuth": x509.ExtKeyUsageServerAuth, "clientAuth": x509.ExtKeyUsageClientAuth,
	"codeSigning": x509.ExtKeyUsageCodeSigning, "emailProtection": x509.ExtKeyUsageEmailProtection,
}

// readPolicies reads -policy-file; none when the name is "".
func readPolicies(name string) (map[lifecycle.PolicyScope]*lifecycle.Policy, error) {
	if name == "" {
		return nil, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var f policyFile
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("-policy-file: %w", err)
	}
	out := map[lifecycle.PolicyScope]*lifecycle.Policy{}
	for i, p := range f.Policies {
		scope := lifecycle.PolicyScope{CA: p.CA, Tenant: p.Tenant}
		if out[scope] != nil {
			return nil, fmt.Errorf("-policy-file: policy %d: a second policy for ca %q tenant %q", i, p.CA, p.Tenant)
		}
		pol := &lifecycle.Policy{DNSSuffixes: p.DNSSuffixes, DenyIPAddresses: p.DenyIPAddresses, AllowWildcards: p.AllowWildcards,
			OmitCNFromSAN: p.OmitCNFromSAN, RequiredSubject: p.RequiredSubject, FixedSubject: p.FixedSubject}
		for _, kt := range p.KeyTypes {
			pol.KeyTypes = append(pol.KeyTypes, lifecycle.CertKeyType(kt))
		}
		for _, e := range p.ExtKeyUsage {
			u, ok := extKeyUsages[e]
			if !ok {
				return nil, fmt.Errorf("-policy-file: policy %d: unknown ext_key_usage %q", i, e)
			}
			pol.ExtKeyUsage = append(pol.ExtKeyUsage, u)
		}
		if p.MaxValidity != "" {
			if pol.MaxValidity, err = time.ParseDuration(p.MaxValidity); err != nil {
				return nil, fmt.Errorf("-policy-file: policy %d: max_validity: %w", i, err)
			}
		}
		if err := pol.Validate(); err != nil {
			return nil, fmt.Errorf("-policy-file: policy %d: %w", i, err)
		}
		out[scope] = pol
	}
	return out, nil
}
