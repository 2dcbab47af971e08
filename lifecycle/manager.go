package lifecycle

import (
	"context"
	"crypto/x509"
	"time"
)

// Manager is every operation of the CLM v10 protocol (PSKs, devices,
// certificates, symmetric keys, health) as a Go API. The Engine returned by
// New implements it; httpadapter serves it over HTTP, and an integrator may
// wrap it (audit, metrics, rate limits) without copying its behaviour.
//
// Every method takes ctx first and honours its cancellation. Every error is
// an *Error carrying a CLM Code: test with errors.Is(err, CodeXxx) or read it
// with CodeOf. A failed call changes nothing.
//
// Operations that a device performs (spec §4–7) carry PSKCredentials and are
// checked in the spec's order: required fields, formats, limits, then the
// PSK, then the device, then the credential and its state. Administrative
// operations (IssuePSK, GetPSK, ListPSKs, and the device administration)
// take the tenant explicitly: the caller is trusted.
type Manager interface {
	// IssuePSK issues a PSK (keyid and password) in a tenant (spec §4).
	IssuePSK(ctx context.Context, req IssuePSKRequest) (*PSK, error)
	// GetPSK returns a PSK with its password; CodePSKNotFound if absent.
	GetPSK(ctx context.Context, keyID string) (*PSK, error)
	// ListPSKs returns a page of PSKs in keyid order.
	ListPSKs(ctx context.Context, req ListPSKsRequest) (*PSKPage, error)
	// AuthenticatePSK checks a keyid and password, in constant time, and
	// returns who they name.
	AuthenticatePSK(ctx context.Context, c PSKCredentials) (*Caller, error)
	// DeletePSK deletes an authenticated PSK. Its devices and credentials
	// stay with the tenant.
	DeletePSK(ctx context.Context, c PSKCredentials) error
	// SetPSKStatus enables or disables a PSK.
	SetPSKStatus(ctx context.Context, keyID string, s PSKStatus) error

	// EnrollDevice resolves the device of a request exactly as credential
	// creation does (spec §5): with no Device.ID it registers a new device
	// and returns its key once; with an ID it checks the device and records
	// the request's IP, MAC and ext_data.
	EnrollDevice(ctx context.Context, req EnrollDeviceRequest) (*DeviceResult, error)
	// GetDevice returns a tenant's device; CodeDeviceNotFound if absent or
	// of another tenant.
	GetDevice(ctx context.Context, tenant, deviceID string) (*Device, error)
	// ListDevices returns a page of a tenant's devices in id order.
	ListDevices(ctx context.Context, req ListDevicesRequest) (*DevicePage, error)
	// SetDeviceStatus enables or disables a tenant's device.
	SetDeviceStatus(ctx context.Context, tenant, deviceID string, s DeviceStatus) error
	// DecommissionDevice revokes every valid certificate of a tenant's
	// device, deletes its symmetric keys and disables it, in one
	// transaction; a second call changes nothing.
	DecommissionDevice(ctx context.Context, req DecommissionRequest) (*DecommissionResult, error)

	// ListCredentials returns a page of a tenant's credentials, by device,
	// kind, state, CA and expiry (the inventory; administrative).
	ListCredentials(ctx context.Context, req ListCredentialsRequest) (*CredentialPage, error)
	// GetCredential returns one of a tenant's credentials by keynumber, or
	// a certificate by CA and serial.
	GetCredential(ctx context.Context, req GetCredentialRequest) (*CredentialInfo, error)
	// RevokeCredential revokes a tenant's certificate with a reason, as an
	// administrator, whatever device holds it.
	RevokeCredential(ctx context.Context, req RevokeCredentialRequest) (*CredentialInfo, error)
	// ListCAs returns the engine's CAs with their chains, the default first.
	ListCAs(ctx context.Context) ([]CAInfo, error)

	// CACertificate returns a CA's certificate (certmode "caonly", spec §6).
	CACertificate(ctx context.Context, req CACertificateRequest) (*CACertificateResult, error)
	// IssueCertificate issues a client/server certificate with a key
	// generated on the server (certmode "client", spec §6).
	IssueCertificate(ctx context.Context, req IssueCertificateRequest) (*CertificateResult, error)
	// IssueCertificateFromCSR issues a certificate for a key the device
	// made, from its PKCS#10 request (certmode "csr", spec §8b). The result
	// has no private key; renewing the certificate takes a new CSR.
	IssueCertificateFromCSR(ctx context.Context, req IssueFromCSRRequest) (*CertificateResult, error)
	// GetCertificate returns a certificate by keynumber or serial and binds
	// it to the device.
	GetCertificate(ctx context.Context, req GetCertificateRequest) (*CertificateResult, error)
	// RenewCertificate issues a successor with the same subject and a new
	// key, or adopts an existing certificate; the old one is superseded.
	RenewCertificate(ctx context.Context, req RenewCertificateRequest) (*CertificateResult, error)
	// RevokeCertificate revokes a certificate bound to the device.
	RevokeCertificate(ctx context.Context, req RevokeCertificateRequest) (*RevokeCertificateResult, error)
	// EnrollEST issues a certificate over EST (RFC 7030): simpleenroll,
	// simplereenroll or serverkeygen, authenticated by a PSK or a client
	// certificate; the certificate is a credential of the device, bound at
	// ESTPath(label).
	EnrollEST(ctx context.Context, req ESTRequest) (*ESTResult, error)
	// CRL returns the current CRL of a CA.
	CRL(ctx context.Context, ca string) (*CRL, error)
	// OCSP answers an OCSP request (RFC 6960, DER) about a certificate of
	// a CA (spec §8c). Like CRL it needs no authentication.
	OCSP(ctx context.Context, ca string, request []byte) (*OCSPResponse, error)
	// CAChain returns a CA's certificate chain: its own certificate first,
	// then its issuers up to the root.
	CAChain(ctx context.Context, ca string) ([]*x509.Certificate, error)

	// CreateKey generates a symmetric key for a device (spec §7).
	CreateKey(ctx context.Context, req CreateKeyRequest) (*KeyResult, error)
	// GetKey returns a symmetric key and binds it to the device.
	GetKey(ctx context.Context, req GetKeyRequest) (*KeyResult, error)
	// RotateKey replaces a key by a new one, or adopts an existing one; the
	// old key becomes superseded ("updated").
	RotateKey(ctx context.Context, req RotateKeyRequest) (*KeyResult, error)
	// DeleteKey deletes a key whose value the caller proves to know.
	DeleteKey(ctx context.Context, req DeleteKeyRequest) (*DeleteKeyResult, error)

	// Status checks that the store answers (CodeDBConnection otherwise) and
	// that every CA can sign (CodeCryptoFailed otherwise).
	Status(ctx context.Context) error
}

// PSKCredentials are the keyid and password that authenticate a device's
// request (spec §2). A keyid is 1 to 10 decimal digits; "0000000001" and
// "1" name the same PSK.
type PSKCredentials struct {
	KeyID    string
	Password Secret
}

// Caller is who a PSK names.
type Caller struct {
	KeyID  string // canonical, 10 digits
	Tenant string
}

// PSK is a pre-shared key: an ID (keyid) and a password (spec §4).
type PSK struct {
	KeyID     string // 10 digits, zero-padded
	Tenant    string
	Alias     string
	Password  Secret
	Status    PSKStatus
	CreatedAt time.Time
	ExpiresAt time.Time
}

// IssuePSKRequest asks for a new PSK.
type IssuePSKRequest struct {
	Tenant string // required, ≤ 128 bytes
	Alias  string // required, ≤ 256 bytes
}

// ListPSKsRequest selects a page of PSKs.
type ListPSKsRequest struct {
	Tenant string // "" for every tenant
	After  string // exclusive keyid cursor; "" from the start
	Limit  int    // 0 for the engine's default page size
}

// PSKPage is a page of PSKs. Next is the cursor of the following page, ""
// when this is the last.
type PSKPage struct {
	PSKs []*PSK
	Next string
}

// DeviceRequest is the device part of a device's request (spec §5).
type DeviceRequest struct {
	ID         string // "" on the device's first request
	Name       string // ≤ 256 bytes; unique in the tenant
	Key        Secret // the device key returned at registration; optional unless the engine requires it
	IPAddress  string // IPv4 or IPv6 text, or ""
	MACAddress string // 12:34:56:78:90:12, 12-34-56-78-90-12 or 123456789012, or ""
	ExtData    map[string]string
}

// Device is a registered device.
type Device struct {
	Tenant     string
	ID         string
	Name       string
	Status     DeviceStatus
	IPAddress  string
	MACAddress string
	ExtData    map[string]string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	// ValidCredentials is how many valid certificates and keys are bound
	// to the device, when ListDevicesRequest.Counts asked; 0 otherwise.
	ValidCredentials int
}

// DeviceResult is the device a request resolved to. Key is set, once, when
// the request registered the device.
type DeviceResult struct {
	Device *Device
	Key    Secret
}

// EnrollDeviceRequest resolves or registers the device of a request.
type EnrollDeviceRequest struct {
	PSK    PSKCredentials
	Device DeviceRequest
}

// ListDevicesRequest selects a page of a tenant's devices.
type ListDevicesRequest struct {
	Tenant string // required
	After  string // exclusive deviceid cursor
	Limit  int    // 0 for the default
	// Counts fills each Device's ValidCredentials (one count per device).
	Counts bool
}

// DevicePage is a page of devices; Next is "" on the last page.
type DevicePage struct {
	Devices []*Device
	Next    string
}

// CertFormat is the encoding of a certificate in a response.
type CertFormat string

const (
	FormatPEM CertFormat = "pem" // the default; "" means pem
	FormatDER CertFormat = "der"
	FormatP12 CertFormat = "p12" // PKCS#12 with the private key; no chain
)

// EncodedCertificate is a certificate as a response carries it.
type EncodedCertificate struct {
	KeyNumber int64
	Serial    string     // uppercase hex
	Format    CertFormat // pem, der or p12
	// Data is PEM text, DER bytes, or the PFX bytes for p12.
	Data     []byte
	NotAfter time.Time
}

// CACertificateRequest asks for a CA's certificate (certmode "caonly").
type CACertificateRequest struct {
	PSK     PSKCredentials
	Device  DeviceRequest
	CA      string     // "CA", or "" for it
	Format  CertFormat // pem (the default) or der
	Path    string     // where the device keeps it; "" binds it without a path
	KeyPath string     // the protocol's keyfilepath; unused
	Issuer  string     // which CA's certificate: "" for the default issuing CA
}

// CACertificateResult is a CA certificate and the device that asked.
type CACertificateResult struct {
	Device *DeviceResult
	CA     EncodedCertificate
}

// IssueCertificateRequest asks for a certificate (certmode "client").
// Only PSK, Device and Subject are required. A request without
// Device.ID registers a device, named Device.Name or, without one, its id.
type IssueCertificateRequest struct {
	PSK        PSKCredentials
	Device     DeviceRequest
	CA         string     // the issuing CA; "" for the engine's default (the first of Options.CAs, "ca1")
	Subject    string     // /C=../ST=../L=../O=../OU=../CN=.. ; CN required
	Format     CertFormat // of the certificate: pem (the default), der or p12
	CAFormat   CertFormat // of the CA certificate: pem (the default) or der
	KeyType    string     // "" for the engine's default (Options.CertKeyType, EC-P256)
	Passphrase Secret     // encrypts the private key; required for p12; "" gives unencrypted PKCS#8
	// Path is where the device keeps the certificate; "" binds it to the
	// device without a path (and later calls without a path match that
	// binding). A retry within Options.ReplayWindow is recognised by its
	// path: without one, every call issues a new certificate.
	Path    string
	CAPath  string // where the device keeps the CA certificate; "" records none
	KeyPath string // the protocol's keyfilepath; unused
}

// IssueFromCSRRequest asks for a certificate for a key the device made
// and keeps, sent as a PKCS#10 request (certmode "csr", spec §8b). Only
// PSK, Device and CSR are required.
type IssueFromCSRRequest struct {
	PSK    PSKCredentials
	Device DeviceRequest
	CA     string // the issuing CA; "" for the engine's default
	// CSR is the request: PEM (CERTIFICATE REQUEST), DER, or base64 of the
	// DER; at most MaxCSRLen bytes. Its signature must verify and its key
	// be EC P-256 or P-384, RSA 2048, 3072 or 4096, or Ed25519.
	// Extensions it asks for are ignored but for DNS and IP
	// subjectAltNames, which the CA's Policy accepts or refuses.
	CSR []byte
	// Subject, when given (/C=../CN=..), replaces the CSR's subject, which
	// is otherwise used and must then keep to the same rules.
	Subject  string
	Format   CertFormat // of the certificate: pem (the default) or der
	CAFormat CertFormat // of the CA certificate: pem (the default) or der
	Path     string     // where the device keeps the certificate; "" binds it without a path
	CAPath   string     // where the device keeps the CA certificate; "" records none
	KeyPath  string     // the protocol's keyfilepath; unused
}

// CertificateResult is an issued, fetched or renewed certificate.
type CertificateResult struct {
	Device      *DeviceResult
	CA          *EncodedCertificate // the issuing CA's certificate, when returned
	Certificate EncodedCertificate
	// PrivateKey is the PKCS#8 PEM private key (encrypted when a passphrase
	// was given); empty for p12, whose PFX holds the key.
	PrivateKey Secret
}

// CertificateRef names a certificate by keynumber or by serial.
type CertificateRef struct {
	KeyNumber int64
	Serial    string // hex, any case, leading zeros ignored
}

// GetCertificateRequest fetches a certificate (mode "get").
type GetCertificateRequest struct {
	PSK        PSKCredentials
	Device     DeviceRequest
	CA         string // an issuing CA's name ("" for the default), or "CA" for a CA certificate
	Ref        CertificateRef
	Format     CertFormat // pem (the default), der or p12
	Passphrase Secret     // encrypts the private key; required for p12
	Path       string     // where the device keeps it; "" binds it without a path
}

// RenewCertificateRequest renews a certificate (mode "update").
type RenewCertificateRequest struct {
	PSK        PSKCredentials
	Device     DeviceRequest
	CA         string         // "" for the default CA
	Ref        CertificateRef // the certificate to renew
	Adopt      CertificateRef // a certificate to adopt as the successor; zero to issue anew
	Format     CertFormat     // pem (the default), der or p12
	Passphrase Secret         // encrypts the new key; required for p12; "" gives unencrypted PKCS#8
	Path       string         // where the device keeps the old one ("" if bound without a path)
	NewPath    string         // where it keeps the successor; "" for Path
	// CSR is a PKCS#10 request (PEM, DER, or base64 of the DER) for the
	// successor's key, which the device made and keeps; the successor
	// has the old certificate's subject. Required to renew a certificate
	// issued for a CSR; with it, Format is pem or der.
	CSR []byte
}

// RevokeCertificateRequest revokes a certificate (mode "revoke").
type RevokeCertificateRequest struct {
	PSK    PSKCredentials
	Device DeviceRequest
	CA     string // "" for the default CA
	Ref    CertificateRef
	Reason int    // RFC 5280 CRLReason; 0 unspecified
	Path   string // optional; if given it must match a binding
}

// RevokeCertificateResult names the revoked certificate.
type RevokeCertificateResult struct {
	Device    *DeviceResult
	KeyNumber int64
	Serial    string
}

// CRL is a CA's certificate revocation list.
type CRL struct {
	CA         string
	Number     int64
	DER        []byte
	ThisUpdate time.Time
	NextUpdate time.Time
}

// CreateKeyRequest asks for a symmetric key (spec §7).
type CreateKeyRequest struct {
	PSK       PSKCredentials
	Device    DeviceRequest
	Alias     string // required, ≤ 64 bytes
	KeyType   string // "AES" (the default) or "TWINE"
	KeyLength int    // bits; 0 for 128
	Path      string // where the device keeps it; "" binds it without a path (and is never taken for a retry)
	KeyPath   string // the protocol's keyfilepath; unused
}

// KeyResult is a created, fetched or rotated symmetric key.
type KeyResult struct {
	Device    *DeviceResult
	KeyNumber int64
	Alias     string
	KeyType   string
	KeyLength int
	Key       SecretBytes
	ExpiresAt time.Time
}

// GetKeyRequest fetches a symmetric key.
type GetKeyRequest struct {
	PSK       PSKCredentials
	Device    DeviceRequest
	KeyNumber int64
	Path      string // where the device keeps it; "" binds it without a path
}

// RotateKeyRequest rotates a symmetric key (mode "update").
type RotateKeyRequest struct {
	PSK          PSKCredentials
	Device       DeviceRequest
	KeyNumber    int64
	NewKeyNumber int64  // adopt this key instead of generating one; 0 to generate
	Alias        string // "" keeps the old alias
	KeyLength    int    // 0 keeps the old length
	Path         string // where the device keeps the key ("" if bound without a path)
	NewPath      string // where it keeps the new one; "" for Path
}

// DeleteKeyRequest deletes a symmetric key.
type DeleteKeyRequest struct {
	PSK       PSKCredentials
	Device    DeviceRequest
	KeyNumber int64
	Key       SecretBytes // must equal the stored key
	Path      string      // where the device keeps it ("" if bound without a path)
}

// DeleteKeyResult names the deleted key.
type DeleteKeyResult struct {
	Device    *DeviceResult
	KeyNumber int64
}
