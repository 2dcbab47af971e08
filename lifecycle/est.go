package lifecycle

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"

	"github.com/credlife/clm/lifecycle/driver"
)

// ESTRequest is an enrollment over EST (RFC 7030; see the project's
// spec/est.md): simpleenroll, simplereenroll or serverkeygen. Exactly one of
// PSK and Certificate authenticates it.
type ESTRequest struct {
	// PSK authenticates a first enrollment (HTTP Basic keyid:password):
	// the device is named by the CSR (its subject's serialNumber, else its
	// CN) and must not be registered yet in the PSK's tenant.
	PSK *PSKCredentials
	// Certificate is the client certificate of the TLS connection, which
	// must be a valid certificate of one of the engine's CAs, bound to a
	// device: the device enrolled, or renewing.
	Certificate *x509.Certificate
	// CA is the EST label, naming the issuing CA; "" for the default.
	CA string
	// CSR is the PKCS#10 request (DER, PEM or base64 of the DER).
	CSR []byte
	// Renew is simplereenroll: the CSR's subject must be the
	// Certificate's, which the new certificate supersedes.
	Renew bool
	// ServerKeyGen is serverkeygen: the server makes the key (the CSR names
	// the subject; its key is ignored) and returns it.
	ServerKeyGen bool
}

// ESTResult is an EST enrollment's certificate.
type ESTResult struct {
	Device      *Device
	KeyNumber   int64
	Certificate *x509.Certificate
	// Chain is the issuing CA's chain, its certificate first.
	Chain []*x509.Certificate
	// PrivateKey is the PKCS#8 DER key of a serverkeygen; nil otherwise.
	PrivateKey Secret
}

// ESTPath is the binding path of a certificate enrolled over EST under
// label (spec est.md): v10 get, update and revoke name it.
func ESTPath(label string) string { return "est:" + label }

// EnrollEST implements Manager. Errors: CodeCANameInvalid for an unknown
// label; CodeMissing, CodeMalformed, CodeOutOfRange for the CSR (a policy's
// refusal wraps a *PolicyError); the PSK's codes (and its brute-force
// limits); CodeDeviceNameExists when a PSK enrolls a name already
// registered; for a client certificate not issued by the CA or unknown
// CodeCertNotFound, revoked or superseded CodeCertRevoked, expired
// CodeCertExpired, bound to no device CodeCertNotBound; for a renewal
// whose CSR names another subject CodeMalformed. Nothing changes on an
// error.
func (e *Engine) EnrollEST(ctx context.Context, req ESTRequest) (res *ESTResult, err error) {
	op := "EnrollEST"
	switch {
	case req.Renew:
		op = "ReenrollEST"
	case req.ServerKeyGen:
		op = "ServerKeyGenEST"
	}
	defer func() {
		ev := AuditEvent{Op: op}
		if req.PSK != nil {
			ev.KeyID = req.PSK.KeyID
		}
		if res != nil {
			ev.Tenant, ev.DeviceID, ev.KeyNumber, ev.Serial = res.Device.Tenant, res.Device.ID, res.KeyNumber, FormatSerial(res.Certificate.SerialNumber)
		}
		e.audit(ctx, ev, err)
	}()
	ca := e.cas[e.caName(req.CA)]
	if ca == nil {
		return nil, errf(op, CodeCANameInvalid, "catype", nil)
	}
	c := newCheck(op)
	csr := c.csr("csr", req.CSR, true) // serverkeygen too: the CSR is signed, though its key is not used
	if err := c.err(); err != nil {
		return nil, err
	}
	if (req.PSK == nil) == (req.Certificate == nil) {
		return nil, errf(op, CodeMissing, "key", errors.New("a PSK or a client certificate, not both"))
	}
	if req.Renew && req.Certificate == nil {
		return nil, errf(op, CodeCertNotFound, "certificate", errors.New("simplereenroll authenticates with the certificate being renewed"))
	}
	sub, serr := subjectOfName(csr.RawSubject)
	name := csr.Subject.SerialNumber
	if name == "" {
		name = csr.Subject.CommonName
	}
	if name == "" {
		return nil, fieldErr(op, CodeMalformed, "csr", "the CSR's subject names no device (serialNumber or CN)")
	}

	// Who is asking.
	var (
		tenant string
		d      DeviceRequest
		old    *driver.CredentialRecord
	)
	if req.Certificate != nil {
		var devID string
		if old, devID, err = e.certCaller(ctx, op, ca, req.Certificate); err != nil {
			return nil, err
		}
		tenant, d = old.Tenant, DeviceRequest{ID: devID}
	} else {
		ck := newCheck(op)
		ck.psk(*req.PSK)
		d = ck.device(DeviceRequest{Name: name}, deviceRules{mayRegister: true}, false)
		caller, err := e.admit(ctx, op, ck, *req.PSK)
		if err != nil {
			return nil, err
		}
		tenant = caller.Tenant
		if err := e.precheckDevice(ctx, op, tenant, d); err != nil {
			return nil, err
		}
	}
	if serr != nil {
		if sub, serr = subjectOfName(withoutSerialNumber(csr)); serr != nil {
			return nil, fieldErr(op, CodeMalformed, "csr", "the CSR's subject must have a CN and only C, ST, L, O, OU (and serialNumber)")
		}
	}

	// What to issue.
	kt, _ := CertKeyTypeOf(csr.PublicKey)
	if req.ServerKeyGen {
		kt = e.certKeyType
	}
	n := names{subject: sub, dns: csr.DNSNames, ips: addrsOf(csr.IPAddresses)}
	var spec *leafSpec
	if req.Renew {
		oc, err := x509.ParseCertificate(old.Certificate)
		if err != nil {
			return nil, errf(op, CodeDBData, "", err)
		}
		oldSub, err := ParseSubject(old.Subject)
		if err != nil || oldSub.String() != sub.String() {
			return nil, fieldErr(op, CodeMalformed, "csr", "a renewal's CSR must name the subject of the certificate renewed")
		}
		n.subject, n.keepSubject = oldSub, true
		if spec, err = e.policyFor(ca.Name(), tenant).apply(tenant, kt, n, e.certValidity); err != nil {
			return nil, policyFail(op, err, "csr", "csr")
		}
		spec.raw, spec.rawText = oc.RawSubject, old.Subject
	} else if spec, err = e.policyFor(ca.Name(), tenant).apply(tenant, kt, n, e.certValidity); err != nil {
		return nil, policyFail(op, err, "csr", "csr")
	}
	release, err := e.expensive(ctx, op, req.ServerKeyGen && kt.isRSA())
	if err != nil {
		return nil, err
	}
	defer release()
	var leaf *newLeaf
	if req.ServerKeyGen {
		leaf, err = e.issueLeaf(ctx, op, ca, tenant, kt, spec)
	} else {
		leaf, err = e.signLeaf(ctx, op, ca, tenant, csr.PublicKey, kt, spec)
	}
	if err != nil {
		return nil, err
	}
	defer leaf.wipe()
	path := ESTPath(ca.Name())
	dev, err := e.withDevice(ctx, op, entityCertificate, tenant, d, func(tx driver.Tx, dev *DeviceResult) error {
		if err := tx.CreateCredential(ctx, leaf.record); err != nil {
			return err
		}
		if req.Renew {
			err := tx.TransitionCredential(ctx, driver.Transition{KeyNumber: old.KeyNumber, From: driver.StateValid, To: driver.StateSuperseded,
				At: e.now().UTC(), Reason: ReasonSuperseded, ReplacedBy: leaf.record.KeyNumber})
			if errors.Is(err, driver.ErrConflict) {
				return errf(op, CodeCertRevoked, "certificate", err) // renewed or revoked meanwhile
			}
			if err != nil {
				return err
			}
		}
		return tx.PutBinding(ctx, &driver.BindingRecord{Tenant: tenant, DeviceID: dev.Device.ID, KeyNumber: leaf.record.KeyNumber, Path: path, CreatedAt: e.now().UTC()})
	})
	if err != nil {
		return nil, err
	}
	res = &ESTResult{Device: dev.Device, KeyNumber: leaf.record.KeyNumber, Certificate: leaf.cert, Chain: append([]*x509.Certificate(nil), ca.Chain()...)}
	if req.ServerKeyGen {
		res.PrivateKey = Secret(leaf.pkcs8) // a copy; the deferred wipe clears the DER
	}
	return res, nil
}

// certCaller authenticates a client certificate: issued by ca (its
// signature), recorded as this certificate (same bytes), valid, not
// expired, and bound to a device. It returns the record and the device.
func (e *Engine) certCaller(ctx context.Context, op string, ca CA, cert *x509.Certificate) (*driver.CredentialRecord, string, error) {
	if cert.CheckSignatureFrom(ca.Certificate()) != nil {
		return nil, "", errf(op, CodeCertNotFound, "certificate", errors.New("not issued by this CA"))
	}
	rec, err := e.store.GetCredentialBySerial(ctx, ca.Name(), FormatSerial(cert.SerialNumber))
	switch {
	case errors.Is(err, driver.ErrNotFound):
		return nil, "", errf(op, CodeCertNotFound, "certificate", nil)
	case err != nil:
		return nil, "", e.storeErr(op, entityNone, err)
	case rec.Kind != driver.KindCertificate || !bytes.Equal(rec.Certificate, cert.Raw):
		return nil, "", errf(op, CodeCertNotFound, "certificate", nil)
	case rec.State != driver.StateValid:
		return nil, "", errf(op, CodeCertRevoked, "certificate", nil)
	case !e.now().Before(rec.NotAfter) || e.now().Before(rec.NotBefore):
		return nil, "", errf(op, CodeCertExpired, "certificate", nil)
	}
	bs, err := e.store.BindingsOf(ctx, rec.KeyNumber)
	if err != nil {
		return nil, "", e.storeErr(op, entityNone, err)
	}
	if len(bs) == 0 {
		return nil, "", errf(op, CodeCertNotBound, "certificate", nil)
	}
	return rec, bs[0].DeviceID, nil
}

// withoutSerialNumber is a CSR's subject without its serialNumber
// attribute (which names the device, spec est.md), in DER.
func withoutSerialNumber(csr *x509.CertificateRequest) []byte {
	name := csr.Subject
	name.SerialNumber = ""
	name.Names, name.ExtraNames = nil, nil
	raw, err := asn1.Marshal(name.ToRDNSequence())
	if err != nil {
		return nil
	}
	return raw
}
