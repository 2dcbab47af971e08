// Package wire holds the JSON shapes of the CLM WebAPI v10 protocol, shared
// by httpadapter (which serves them) and httpadapter/client (which sends
// them): response bodies, request bodies as a client writes them, and the
// protocol's conventions for numbers and times.
package wire

import (
	"strconv"
	"time"
)

// Paths of the endpoints, under the adapter's prefix.
const (
	PathIDInfo       = "IDInfo"
	PathCredInfo     = "CredInfo"
	PathKeyInfo      = "KeyInfo"
	PathSystemStatus = "SystemStatus"
	PathCRL          = "CRL"
	PathOCSP         = "OCSP"
	PathCACert       = "CACert"
)

// LicenseUser is the user name of the license-key Basic authentication.
const LicenseUser = "secureware-clm"

// Expiration writes a time as the protocol does: milliseconds since the
// Unix epoch, as a decimal string.
func Expiration(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// ParseExpiration reads an expiration written by Expiration.
func ParseExpiration(s string) (time.Time, error) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms).UTC(), nil
}

// Num writes a number as the protocol's responses do: a decimal string.
func Num(n int64) string { return strconv.FormatInt(n, 10) }

// ErrorResponse is the body of every failed request.
type ErrorResponse struct {
	ErrorCode int `json:"errorcode"`
}

// PSKInfo is one PSK in a GET IDInfo answer.
type PSKInfo struct {
	KeyID      string `json:"keyid"`
	Key        string `json:"key"`
	Alias      string `json:"alias"`
	TenantID   string `json:"tenantid"`
	Expiration string `json:"expiration"`
}

// IDInfoResponse is the body of every IDInfo answer; fields a mode does not
// give are omitted.
type IDInfoResponse struct {
	ErrorCode  int        `json:"errorcode"`
	KeyID      string     `json:"keyid,omitempty"`
	Key        string     `json:"key,omitempty"`
	Alias      string     `json:"alias,omitempty"`
	Expiration string     `json:"expiration,omitempty"`
	KeyInfo    *[]PSKInfo `json:"keyinfo,omitempty"`
	Next       string     `json:"next,omitempty"`
}

// CredInfoResponse is the body of every CredInfo answer.
type CredInfoResponse struct {
	ErrorCode       int    `json:"errorcode"`
	DeviceID        string `json:"deviceid,omitempty"`
	DeviceKey       string `json:"devicekey,omitempty"`
	CACert          string `json:"cacert,omitempty"`
	CACertType      string `json:"cacerttype,omitempty"`
	CAKeyNumber     string `json:"cakeynumber,omitempty"`
	CASerial        string `json:"caserial,omitempty"`
	ClientCert      string `json:"clientcert,omitempty"`
	ClientCertType  string `json:"clientcerttype,omitempty"`
	ClientKeyNumber string `json:"clientkeynumber,omitempty"`
	ClientSerial    string `json:"clientserial,omitempty"`
	PrivateKey      string `json:"privatekey,omitempty"`
}

// KeyInfoResponse is the body of every KeyInfo answer.
type KeyInfoResponse struct {
	ErrorCode  int    `json:"errorcode"`
	DeviceID   string `json:"deviceid,omitempty"`
	DeviceKey  string `json:"devicekey,omitempty"`
	CommonKey  string `json:"commonkey,omitempty"`
	KeyNumber  string `json:"keynumber,omitempty"`
	Alias      string `json:"alias,omitempty"`
	Expiration string `json:"expiration,omitempty"`
}

// Device are the device fields of a request.
type Device struct {
	DeviceID   string            `json:"deviceid,omitempty"`
	DeviceName string            `json:"devicename,omitempty"`
	DeviceKey  string            `json:"devicekey,omitempty"`
	IPAddress  string            `json:"ipaddress,omitempty"`
	MACAddress string            `json:"macaddress,omitempty"`
	ExtData    map[string]string `json:"ext_data,omitempty"`
}

// IDInfoRequest is an IDInfo POST body as a client writes it.
type IDInfoRequest struct {
	Mode     string `json:"mode"`
	TenantID string `json:"tenantid,omitempty"`
	Alias    string `json:"alias,omitempty"`
	KeyID    string `json:"keyid,omitempty"`
	Key      string `json:"key,omitempty"`
}

// CredInfoRequest is a CredInfo body as a client writes it.
type CredInfoRequest struct {
	Mode  string `json:"mode"`
	KeyID string `json:"keyid"`
	Key   string `json:"key"`
	Device
	CertMode       string `json:"certmode,omitempty"`
	CAType         string `json:"catype,omitempty"`
	CACertType     string `json:"cacerttype,omitempty"`
	ClientCertType string `json:"clientcerttype,omitempty"`
	ClientSubject  string `json:"clientsubject,omitempty"`
	Passphrase     string `json:"passphrase,omitempty"`
	KeyFilePath    string `json:"keyfilepath,omitempty"`
	CAFilePath     string `json:"cafilepath,omitempty"`
	ClientFilePath string `json:"clientfilepath,omitempty"`
	KeyNumber      string `json:"keynumber,omitempty"`
	CertSerial     string `json:"certserial,omitempty"`
	NewKeyNumber   string `json:"newkeynumber,omitempty"`
	NewCertSerial  string `json:"newcertserial,omitempty"`
	CertType       string `json:"certtype,omitempty"`
	FilePath       string `json:"filepath,omitempty"`
	NewFilePath    string `json:"newfilepath,omitempty"`
	CSR            string `json:"csr,omitempty"`
}

// KeyInfoRequest is a KeyInfo body as a client writes it.
type KeyInfoRequest struct {
	Mode  string `json:"mode"`
	KeyID string `json:"keyid"`
	Key   string `json:"key"`
	Device
	Alias             string `json:"alias,omitempty"`
	KeyType           string `json:"keytype,omitempty"`
	KeyLength         string `json:"keylength,omitempty"`
	KeyFilePath       string `json:"keyfilepath,omitempty"`
	CommonKeyFilePath string `json:"commonkeyfilepath,omitempty"`
	KeyNumber         string `json:"keynumber,omitempty"`
	NewKeyNumber      string `json:"newkeynumber,omitempty"`
	CommonKey         string `json:"commonkey,omitempty"`
	FilePath          string `json:"filepath,omitempty"`
	NewFilePath       string `json:"newfilepath,omitempty"`
}
