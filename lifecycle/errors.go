package lifecycle

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Code is a CLM error code (spec §9). The zero Code means success.
//
// A Code is itself an error, so a caller can test an error for a code with
// errors.Is:
//
//	if errors.Is(err, lifecycle.CodePasswordMismatch) { ... }
type Code int

// The CLM error codes of the v10 protocol (spec §9).
const (
	CodeOK                 Code = 0
	CodeConfigInvalid      Code = 1001 // server configuration invalid
	CodeConfigRead         Code = 1002 // reading the configuration failed
	CodeSyntax             Code = 1101 // JSON syntax error
	CodeMissing            Code = 1102 // required parameter missing
	CodeMalformed          Code = 1103 // parameter given the wrong way (type, enum, format)
	CodeOutOfRange         Code = 1104 // parameter out of its limits (length, size, range)
	CodePasswordMismatch   Code = 1201 // PSK password mismatch
	CodePSKNotActive       Code = 1202 // PSK status not active
	CodePSKExpired         Code = 1203 // PSK expired
	CodePSKNotFound        Code = 1204 // PSK not found
	CodeKeyIDExhausted     Code = 1205 // keyid sequence exhausted
	CodeCertNotFound       Code = 1301 // certificate not found (keynumber / certserial)
	CodeCANameInvalid      Code = 1302 // CA name (catype) invalid
	CodeCertNotBound       Code = 1303 // certificate not bound to this device
	CodeCertNotValid       Code = 1304 // certificate status not valid
	CodeCertExpired        Code = 1305 // certificate expired
	CodeCertRevoked        Code = 1306 // certificate already revoked or updated
	CodeNewCertNotValid    Code = 1307 // new certificate not valid
	CodeNewCertExpired     Code = 1308 // new certificate expired
	CodeCertPathNotFound   Code = 1309 // certificate file (binding path) not found
	CodeCryptoFailed       Code = 1401 // certificate/key operation failed
	CodeCryptoMalformed    Code = 1402 // certificate/key operation gave a malformed result
	CodeLockTimeout        Code = 1403 // lock timeout
	CodeKeyNotFound        Code = 1501 // symmetric key not found (keynumber)
	CodeNewKeyNotFound     Code = 1502 // symmetric key not found (newkeynumber)
	CodeKeyNotBound        Code = 1503 // key not bound to this device, or wrong filepath
	CodeKeyUpdated         Code = 1504 // key already revoked or updated
	CodeNewKeyNotActive    Code = 1505 // new key not active
	CodeNewKeyExpired      Code = 1506 // new key expired
	CodeNewKeyTypeMismatch Code = 1507 // new key of another cipher type
	CodeCommonKeyMismatch  Code = 1508 // commonkey does not match the stored key
	CodeDBConnection       Code = 1601 // database connection error
	CodeDBAccess           Code = 1602 // database access error
	CodeDBColumn           Code = 1603 // column information invalid
	CodeDBData             Code = 1604 // database data abnormal
	CodeDeviceMismatch     Code = 1701 // deviceid does not match the registered information
	CodeDeviceNameExists   Code = 1702 // device name already registered
	CodeDeviceKeyMismatch  Code = 1703 // device key mismatch
	CodeDeviceNotActive    Code = 1704 // device status not active
	CodeDeviceExpired      Code = 1705 // device expired
	CodeDeviceNotFound     Code = 1706 // device not found
	CodeScript             Code = 1707 // script execution error
	CodeLogInit            Code = 1901 // log initialisation failed
	CodeInit               Code = 2001 // initialisation failed
	CodeEncrypt            Code = 2002 // encryption failed
	CodeDecrypt            Code = 2003 // decryption failed
	CodeCryptoToolkit      Code = 2004 // crypto toolkit call failed
	CodeSystem             Code = 9901 // system error
)

var codeText = map[Code]string{
	CodeOK:                 "success",
	CodeConfigInvalid:      "server configuration invalid",
	CodeConfigRead:         "reading the configuration failed",
	CodeSyntax:             "JSON syntax error",
	CodeMissing:            "required parameter missing",
	CodeMalformed:          "parameter malformed",
	CodeOutOfRange:         "parameter out of its limits",
	CodePasswordMismatch:   "password mismatch",
	CodePSKNotActive:       "PSK not active",
	CodePSKExpired:         "PSK expired",
	CodePSKNotFound:        "PSK not found",
	CodeKeyIDExhausted:     "keyid sequence exhausted",
	CodeCertNotFound:       "certificate not found",
	CodeCANameInvalid:      "CA name invalid",
	CodeCertNotBound:       "certificate not bound to this device",
	CodeCertNotValid:       "certificate not valid",
	CodeCertExpired:        "certificate expired",
	CodeCertRevoked:        "certificate already revoked or updated",
	CodeNewCertNotValid:    "new certificate not valid",
	CodeNewCertExpired:     "new certificate expired",
	CodeCertPathNotFound:   "certificate file path not found",
	CodeCryptoFailed:       "certificate or key operation failed",
	CodeCryptoMalformed:    "certificate or key operation gave a malformed result",
	CodeLockTimeout:        "lock timeout",
	CodeKeyNotFound:        "symmetric key not found",
	CodeNewKeyNotFound:     "new symmetric key not found",
	CodeKeyNotBound:        "symmetric key not bound to this device",
	CodeKeyUpdated:         "symmetric key already revoked or updated",
	CodeNewKeyNotActive:    "new symmetric key not active",
	CodeNewKeyExpired:      "new symmetric key expired",
	CodeNewKeyTypeMismatch: "new symmetric key of another cipher type",
	CodeCommonKeyMismatch:  "common key mismatch",
	CodeDBConnection:       "database connection error",
	CodeDBAccess:           "database access error",
	CodeDBColumn:           "database column information invalid",
	CodeDBData:             "database data abnormal",
	CodeDeviceMismatch:     "device does not match the registered information",
	CodeDeviceNameExists:   "device name already registered",
	CodeDeviceKeyMismatch:  "device key mismatch",
	CodeDeviceNotActive:    "device not active",
	CodeDeviceExpired:      "device expired",
	CodeDeviceNotFound:     "device not found",
	CodeScript:             "script execution error",
	CodeLogInit:            "log initialisation failed",
	CodeInit:               "initialisation failed",
	CodeEncrypt:            "encryption failed",
	CodeDecrypt:            "decryption failed",
	CodeCryptoToolkit:      "crypto toolkit call failed",
	CodeSystem:             "system error",
}

// Codes returns every code of the spec's table, in ascending order,
// CodeOK excluded.
func Codes() []Code {
	out := make([]Code, 0, len(codeText))
	for c := range codeText {
		if c != CodeOK {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// String returns the code's number and meaning, as "1204 PSK not found".
func (c Code) String() string {
	if t, ok := codeText[c]; ok {
		return strconv.Itoa(int(c)) + " " + t
	}
	return strconv.Itoa(int(c))
}

// Error makes a Code usable as an error and as an errors.Is target; its text
// is that of String.
func (c Code) Error() string { return c.String() }

// Error is the error every Manager method returns. It carries the CLM code,
// the operation and, where one is at fault, the request field. Its text never
// contains a secret or a value from the request; the wrapped error (Err) may
// hold internal detail (a database error, say) and is for logs of the
// embedder, not for the wire.
type Error struct {
	Code Code   // the CLM code; never CodeOK
	Op   string // the Manager method, as "IssuePSK"
	// Field is the request field at fault, as the Go request names it
	// ("CA", "Path", "Device.Key", "Ref.KeyNumber"), or "". (httpadapter's
	// own errors name the protocol's fields.)
	Field string
	Err   error // the underlying cause, or nil
}

func (e *Error) Error() string {
	s := "clm: " + e.Op + ": " + e.Code.String()
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the Code of e, so that
// errors.Is(err, CodePSKNotFound) works through any wrapping.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// CodeOf returns the CLM code of err: CodeOK for nil, the Code of an *Error
// or a Code anywhere in its chain, and CodeSystem for any other error.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var c Code
	if errors.As(err, &c) {
		return c
	}
	return CodeSystem
}

// errf builds an *Error for op. field, the protocol's name of the field at
// fault, may be "".
func errf(op string, code Code, field string, cause error) *Error {
	return &Error{Code: code, Op: op, Field: goField(op, field), Err: cause}
}

// fieldErr is the error of a request field that fails validation; the text
// says what is wrong without echoing the value.
func fieldErr(op string, code Code, field, why string) *Error {
	return &Error{Code: code, Op: op, Field: goField(op, field), Err: fmt.Errorf("%s", why)}
}

// goFields are the Go names of the request fields that the checks name by
// the protocol's names (which the engine's checks share with the spec).
var goFields = map[string]string{
	"keyid": "PSK.KeyID", "key": "PSK.Password",
	"deviceid": "Device.ID", "devicename": "Device.Name", "devicekey": "Device.Key",
	"ipaddress": "Device.IPAddress", "macaddress": "Device.MACAddress", "ext_data": "Device.ExtData",
	"tenantid": "Tenant", "alias": "Alias", "catype": "CA", "clientsubject": "Subject",
	"clientcerttype": "Format", "certtype": "Format", "cacerttype": "CAFormat",
	"clientfilepath": "Path", "filepath": "Path", "commonkeyfilepath": "Path", "newfilepath": "NewPath",
	"cafilepath": "CAPath", "keyfilepath": "KeyPath", "passphrase": "Passphrase",
	"keytype": "KeyType", "keylength": "KeyLength", "commonkey": "Key",
	"keynumber": "KeyNumber", "newkeynumber": "NewKeyNumber",
	"keynumber/cert": "Ref.KeyNumber", "certserial": "Ref.Serial",
	"newkeynumber/cert": "Adopt.KeyNumber", "newcertserial": "Adopt.Serial",
	"csr": "CSR", "reason": "Reason", "limit": "Limit", "after": "After", "status": "Status",
}

// goField returns the Go name of the field a check of op names.
func goField(op, field string) string {
	switch op {
	case "AuthenticatePSK", "DeletePSK", "GetPSK", "SetPSKStatus":
		switch field {
		case "keyid":
			return "KeyID"
		case "key":
			return "Password"
		}
	case "CACertificate":
		switch field {
		case "cafilepath":
			return "Path"
		case "cacerttype":
			return "Format"
		}
	case "GetCertificate", "RenewCertificate", "RevokeCertificate":
		if field == "keynumber" || field == "newkeynumber" {
			field += "/cert"
		}
	}
	if g, ok := goFields[field]; ok {
		return g
	}
	return field
}
