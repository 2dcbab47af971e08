package httpadapter

import (
	"encoding/base64"
	"net/http"

	"github.com/credlife/clm/internal/wire"
	"github.com/credlife/clm/lifecycle"
)

// certText writes certificate data as the protocol carries it: PEM as it
// is, DER and PKCS#12 in base64.
func certText(c *lifecycle.EncodedCertificate) string {
	if c.Format == lifecycle.FormatPEM {
		return string(c.Data)
	}
	return base64.StdEncoding.EncodeToString(c.Data)
}

func setCA(r *wire.CredInfoResponse, c *lifecycle.EncodedCertificate) {
	if c == nil {
		return
	}
	r.CACert, r.CACertType, r.CAKeyNumber, r.CASerial = certText(c), string(c.Format), wire.Num(c.KeyNumber), c.Serial
}

func setClient(r *wire.CredInfoResponse, res *lifecycle.CertificateResult) {
	c := &res.Certificate
	if c.KeyNumber == 0 {
		return
	}
	r.ClientCert, r.ClientCertType, r.ClientKeyNumber, r.ClientSerial = certText(c), string(c.Format), wire.Num(c.KeyNumber), c.Serial
	r.PrivateKey = res.PrivateKey.Reveal()
}

func setDevice(r *wire.CredInfoResponse, d *lifecycle.DeviceResult) {
	if d != nil && d.Device != nil {
		r.DeviceID, r.DeviceKey = d.Device.ID, d.Key.Reveal()
	}
}

// ref reads keynumber/certserial (or their new… counterparts).
func (b *body) ref(prefix string) lifecycle.CertificateRef {
	return lifecycle.CertificateRef{KeyNumber: b.num(prefix + "keynumber"), Serial: b.str(prefix + "certserial")}
}

// requireExisting records the fields every call on an existing certificate
// needs (get, update, revoke), in the reference's order: the PSK, the
// device, keynumber or certserial, catype.
func (b *body) requireExisting() {
	b.require(fKeyID, fKey, fDevID, fDevName)
	b.requireIf(!b.has("keynumber") && !b.has("certserial"), "keynumber")
	b.require(fCAType)
}

// credInfo serves CredInfo (spec §6).
func (h *Handler) credInfo(x *exchange) {
	ctx := x.ctx
	b := h.readBody(x, "create", "get", "update", "revoke")
	if b == nil {
		return
	}
	var resp wire.CredInfoResponse
	status := http.StatusOK
	switch x.mode {
	case "create":
		b.require(fKeyID, fKey, fDevName, fCertMode, fCAType, fKeyFile)
		certMode := b.str(fCertMode...)
		format := b.str("clientcerttype")
		leaf := certMode == "client" || certMode == "csr"
		b.requireIf(certMode == "client", fSubject...)
		b.requireIf(certMode == "csr", fCSR...)
		b.requireIf(leaf, fCliFile...)
		b.requireIf(certMode == "caonly" || (leaf && (format == "" || format == "pem")), fCAFile...)
		b.requireIf(certMode == "client" && format == "p12", fPass...)
		if certMode != "" && certMode != "client" && certMode != "caonly" && certMode != "csr" {
			b.bad("certmode")
		}
		psk, dev := b.psk(), b.device()
		caType, caFormat := b.str(fCAType...), b.str("cacerttype")
		keyPath, caPath := b.str(fKeyFile...), b.str(fCAFile...)
		if certMode == "caonly" {
			if err := b.err("CACertificate"); err != nil {
				x.fail(err)
				return
			}
			res, err := h.m.CACertificate(ctx, lifecycle.CACertificateRequest{PSK: psk, Device: dev, CA: caType,
				Format: lifecycle.CertFormat(caFormat), Path: caPath, KeyPath: keyPath})
			if err != nil {
				x.fail(err)
				return
			}
			setDevice(&resp, res.Device)
			setCA(&resp, &res.CA)
		} else {
			// client or csr: a certificate with the CA's.
			var issue func() (*lifecycle.CertificateResult, error)
			op := "IssueCertificate"
			if certMode == "csr" {
				op = "IssueCertificateFromCSR"
				req := lifecycle.IssueFromCSRRequest{PSK: psk, Device: dev, CA: caType, CSR: []byte(b.str(fCSR...)),
					Subject: b.str(fSubject...), Format: lifecycle.CertFormat(format), CAFormat: lifecycle.CertFormat(caFormat),
					Path: b.str(fCliFile...), CAPath: caPath, KeyPath: keyPath}
				issue = func() (*lifecycle.CertificateResult, error) { return h.m.IssueCertificateFromCSR(ctx, req) }
			} else {
				req := lifecycle.IssueCertificateRequest{PSK: psk, Device: dev, CA: caType, Subject: b.str(fSubject...),
					Format: lifecycle.CertFormat(format), CAFormat: lifecycle.CertFormat(caFormat),
					Passphrase: lifecycle.Secret(b.str(fPass...)), Path: b.str(fCliFile...), CAPath: caPath, KeyPath: keyPath}
				issue = func() (*lifecycle.CertificateResult, error) { return h.m.IssueCertificate(ctx, req) }
			}
			if err := b.err(op); err != nil {
				x.fail(err)
				return
			}
			res, err := issue()
			if err != nil {
				x.fail(err)
				return
			}
			setDevice(&resp, res.Device)
			setCA(&resp, res.CA)
			setClient(&resp, res)
		}
		status = http.StatusCreated
	case "get":
		b.requireExisting()
		b.require(fFilePath)
		certType := b.str("certtype")
		b.requireIf(certType == "p12", fPass...)
		req := lifecycle.GetCertificateRequest{PSK: b.psk(), Device: b.device(), CA: b.str(fCAType...), Ref: b.ref(""),
			Format: lifecycle.CertFormat(certType), Passphrase: lifecycle.Secret(b.str(fPass...)), Path: b.str(fFilePath...)}
		if err := b.err("GetCertificate"); err != nil {
			x.fail(err)
			return
		}
		res, err := h.m.GetCertificate(ctx, req)
		if err != nil {
			x.fail(err)
			return
		}
		setDevice(&resp, res.Device)
		setCA(&resp, res.CA)
		setClient(&resp, res)
	case "update":
		b.requireExisting()
		b.require(fFilePath)
		certType := b.str("certtype")
		adopting := b.has("newkeynumber") || b.has("newcertserial")
		withCSR := b.has(fCSR...)
		b.requireIf((!adopting && !withCSR) || certType == "p12", fPass...)
		req := lifecycle.RenewCertificateRequest{PSK: b.psk(), Device: b.device(), CA: b.str(fCAType...), Ref: b.ref(""), Adopt: b.ref("new"),
			Format: lifecycle.CertFormat(certType), Passphrase: lifecycle.Secret(b.str(fPass...)),
			Path: b.str(fFilePath...), NewPath: b.str("newfilepath"), CSR: []byte(b.str(fCSR...))}
		if err := b.err("RenewCertificate"); err != nil {
			x.fail(err)
			return
		}
		res, err := h.m.RenewCertificate(ctx, req)
		if err != nil {
			x.fail(err)
			return
		}
		setDevice(&resp, res.Device)
		setClient(&resp, res)
	case "revoke":
		b.requireExisting()
		req := lifecycle.RevokeCertificateRequest{PSK: b.psk(), Device: b.device(), CA: b.str(fCAType...), Ref: b.ref(""), Path: b.str(fFilePath...)}
		if err := b.err("RevokeCertificate"); err != nil {
			x.fail(err)
			return
		}
		res, err := h.m.RevokeCertificate(ctx, req)
		if err != nil {
			x.fail(err)
			return
		}
		setDevice(&resp, res.Device)
		resp.ClientKeyNumber, resp.ClientSerial = wire.Num(res.KeyNumber), res.Serial
	}
	x.json(status, resp)
}
