package lifecycle

import "context"

// The certificate operations are designed (their request and result types
// are final in shape) but not implemented by this version of the engine:
// each answers an *Error with CodeSystem wrapping ErrNotImplemented.

func notImplemented(op string) error { return errf(op, CodeSystem, "", ErrNotImplemented) }

// CACertificate implements Manager; not implemented yet.
func (e *Engine) CACertificate(ctx context.Context, req CACertificateRequest) (*CACertificateResult, error) {
	return nil, notImplemented("CACertificate")
}

// IssueCertificate implements Manager; not implemented yet.
func (e *Engine) IssueCertificate(ctx context.Context, req IssueCertificateRequest) (*CertificateResult, error) {
	return nil, notImplemented("IssueCertificate")
}

// GetCertificate implements Manager; not implemented yet.
func (e *Engine) GetCertificate(ctx context.Context, req GetCertificateRequest) (*CertificateResult, error) {
	return nil, notImplemented("GetCertificate")
}

// RenewCertificate implements Manager; not implemented yet.
func (e *Engine) RenewCertificate(ctx context.Context, req RenewCertificateRequest) (*CertificateResult, error) {
	return nil, notImplemented("RenewCertificate")
}

// RevokeCertificate implements Manager; not implemented yet.
func (e *Engine) RevokeCertificate(ctx context.Context, req RevokeCertificateRequest) (*RevokeCertificateResult, error) {
	return nil, notImplemented("RevokeCertificate")
}

// CRL implements Manager; not implemented yet.
func (e *Engine) CRL(ctx context.Context, ca string) (*CRL, error) {
	return nil, notImplemented("CRL")
}
