// Package driver is what a clm storage backend implements: the Store and
// Tx interfaces, with their contracts, the records they keep, the
// sequences, and the sentinel errors a Store wraps. Users of the library
// program against package lifecycle (its Manager, New and requests); a
// Store is only handed to lifecycle.New. Every backend proves itself with
// the conformance suite in lifecycle/storetest (backends/memstore is the
// reference implementation), as database/sql drivers do behind
// database/sql.
package driver

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Errors a Store returns. A Store wraps them (fmt.Errorf("...: %w", ErrNotFound)
// or a type whose Unwrap returns them) so that callers test with errors.Is; the
// engine maps them onto CLM codes in one place.
var (
	// ErrNotFound: the record named does not exist.
	ErrNotFound = errors.New("clm store: not found")
	// ErrExists: a record with the same unique key exists already.
	ErrExists = errors.New("clm store: already exists")
	// ErrConflict: a compare-and-swap did not find the expected state; a
	// concurrent change won.
	ErrConflict = errors.New("clm store: conflict")
	// ErrUnavailable: the database cannot be reached (CLM code 1601).
	ErrUnavailable = errors.New("clm store: database unavailable")
	// ErrLockTimeout: a lock was not granted in time (CLM code 1403).
	ErrLockTimeout = errors.New("clm store: lock timeout")
)

// Sequence names a store sequence. Every sequence starts at 1 and hands out
// each number at most once, across every Store handle on the database.
type Sequence string

const (
	// SeqKeyID numbers PSKs (keyid).
	SeqKeyID Sequence = "keyid"
	// SeqKeyNumber numbers every credential (keynumber): CA certificates,
	// issued certificates and symmetric keys share it.
	SeqKeyNumber Sequence = "keynumber"
	// SeqCRLNumber numbers the CRLs of every CA.
	SeqCRLNumber Sequence = "crlnumber"
)

// PSKStatus is the administrative state of a PSK.
type PSKStatus int

const (
	PSKActive   PSKStatus = 1 // usable
	PSKDisabled PSKStatus = 2 // refused with CodePSKNotActive
)

func (s PSKStatus) String() string {
	switch s {
	case PSKActive:
		return "active"
	case PSKDisabled:
		return "disabled"
	}
	return "PSKStatus(" + strconv.Itoa(int(s)) + ")"
}

// DeviceStatus is the administrative state of a device.
type DeviceStatus int

const (
	DeviceActive   DeviceStatus = 1 // usable
	DeviceDisabled DeviceStatus = 2 // refused with CodeDeviceNotActive
)

func (s DeviceStatus) String() string {
	switch s {
	case DeviceActive:
		return "active"
	case DeviceDisabled:
		return "disabled"
	}
	return "DeviceStatus(" + strconv.Itoa(int(s)) + ")"
}

// CredentialKind tells what a credential is.
type CredentialKind int

const (
	KindCACertificate CredentialKind = 1 // a CA's own certificate (catype "CA")
	KindCertificate   CredentialKind = 2 // a client/server certificate issued by a CA
	KindSymmetricKey  CredentialKind = 3 // an AES or TWINE key
)

func (k CredentialKind) String() string {
	switch k {
	case KindCACertificate:
		return "ca-certificate"
	case KindCertificate:
		return "certificate"
	case KindSymmetricKey:
		return "symmetric-key"
	}
	return "CredentialKind(" + strconv.Itoa(int(k)) + ")"
}

// CredentialState is where a credential is in its lifecycle (spec §6, §7).
// Expiry is not a state: it follows from NotAfter and the clock.
type CredentialState int

const (
	StateValid      CredentialState = 1 // issued and usable
	StateRevoked    CredentialState = 2 // certificate revoked
	StateSuperseded CredentialState = 3 // replaced by a renewal or rotation ("updated")
	StateDeleted    CredentialState = 4 // symmetric key deleted; answers as absent
)

func (s CredentialState) String() string {
	switch s {
	case StateValid:
		return "valid"
	case StateRevoked:
		return "revoked"
	case StateSuperseded:
		return "superseded"
	case StateDeleted:
		return "deleted"
	}
	return "CredentialState(" + strconv.Itoa(int(s)) + ")"
}

// PSKRecord is a PSK as a Store keeps it. Password is sealed.
type PSKRecord struct {
	KeyID     int64 // 1 … 9999999999
	Tenant    string
	Alias     string
	Password  []byte // sealed; see lifecycle.Sealer
	Status    PSKStatus
	CreatedAt time.Time
	ExpiresAt time.Time
	// FailuresUntil is when the PSK's failed authentications (counted by
	// CountAuthFailures, which raises it) stop mattering: the engine reads
	// their counts only before then, so that authentication costs nothing
	// more while there are none. Zero when there never were any.
	FailuresUntil time.Time
}

// AuthFailure is one failed authentication of a PSK to count: against the
// PSK and one client (an address), or the PSK as a whole (Client "").
type AuthFailure struct {
	KeyID  int64
	Client string // ≤ 64 bytes
	At     time.Time
	Window time.Duration // the counting window, and the length of a lock
	Limit  int           // the failures within Window that lock the pair
}

// AuthFailures is the failure count of a (PSK, client) pair.
type AuthFailures struct {
	KeyID       int64
	Client      string
	Count       int       // failures in the window that began at Since
	Since       time.Time // start of the counting window
	LockedUntil time.Time // the pair is locked before then; zero if never locked
}

// DeviceRecord is a device as a Store keeps it.
type DeviceRecord struct {
	Tenant string
	ID     string
	Name   string // unique within the tenant
	// SealedKey is the device key, sealed (SealedDeviceKey); in a store of
	// an older version, a keyed hash of it (lifecycle.Sealer.MAC) until the device's
	// next request that carries it.
	SealedKey  []byte
	Status     DeviceStatus
	IPAddress  string            // canonical text, or ""
	MACAddress string            // lowercase colon form, or ""
	ExtData    map[string]string // nil when none
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ExpiresAt  time.Time // zero: never expires
}

// CredentialRecord is a certificate or a symmetric key as a Store keeps it.
type CredentialRecord struct {
	KeyNumber int64 // from SeqKeyNumber; unique
	Tenant    string
	Kind      CredentialKind
	State     CredentialState
	// CA is the name of the issuing CA for certificates and the CA's own
	// name for CA certificates; "" for symmetric keys. (CA, Serial) is unique
	// among records with a serial.
	CA     string
	Serial string // uppercase hex without leading zeros; "" for keys
	// Subject is the certificate's subject in the spec's /C=../CN=.. form.
	Subject   string
	Alias     string // symmetric keys
	KeyType   string // "EC-P256", "RSA-2048", "Ed25519", "AES", "TWINE", ...
	KeyLength int    // bits
	// Certificate is the DER certificate; nil for keys.
	Certificate []byte
	// Secret is the sealed private key (PKCS#8 DER) or symmetric key.
	Secret    []byte
	NotBefore time.Time
	NotAfter  time.Time
	CreatedAt time.Time
	// StateChangedAt, Reason and ReplacedBy describe the last transition.
	StateChangedAt time.Time // zero while valid
	Reason         int       // CRL reason code of a revocation or supersession
	ReplacedBy     int64     // the keynumber that superseded this one, or 0
}

// BindingRecord records that a device holds a credential at a file path on
// the device (spec §5). (DeviceID, KeyNumber, Path) is unique.
type BindingRecord struct {
	Tenant    string
	DeviceID  string
	KeyNumber int64
	Path      string
	CreatedAt time.Time
}

// NoticeRecord records that the engine gave notice about a credential
// (an expiry warning), so that of every process on the store exactly one
// gives it. (KeyNumber, Kind) is unique.
type NoticeRecord struct {
	KeyNumber int64
	Kind      string // ≤ 32 bytes, as "expiring/720h0m0s" or "expired"
	At        time.Time
}

// Transition is a compare-and-swap of a credential's state.
type Transition struct {
	KeyNumber  int64
	From, To   CredentialState
	At         time.Time
	Reason     int
	ReplacedBy int64
}

// PSKQuery selects a page of PSKs in ascending keyid order.
type PSKQuery struct {
	Tenant string // "" for every tenant
	After  int64  // exclusive cursor: only keyids greater than After
	Limit  int    // at most this many; > 0
}

// DeviceQuery selects a page of a tenant's devices in ascending id order.
type DeviceQuery struct {
	Tenant string // required
	After  string // exclusive cursor: only ids greater than After
	Limit  int    // > 0
}

// CredentialQuery selects a page of credentials in ascending keynumber order.
type CredentialQuery struct {
	Tenant string            // "" for every tenant
	CA     string            // "" for any
	Kind   CredentialKind    // 0 for any
	States []CredentialState // nil for any
	// DeviceID, with Tenant, selects the credentials bound to that device
	// (at any path); "" for any.
	DeviceID string
	// ExpiresBefore selects credentials whose NotAfter is before it, and
	// ExpiresAfter those whose NotAfter is at or after it; zero for any.
	ExpiresBefore time.Time
	ExpiresAfter  time.Time
	After         int64 // exclusive cursor on KeyNumber
	Limit         int   // > 0
}

// CredentialStats summarises a set of credentials. Revocations and
// supersessions are one-way and credentials are never removed, so the stats
// of a CA's revoked and superseded certificates change with every change of
// its CRL.
type CredentialStats struct {
	Count           int64
	LastStateChange time.Time // zero when Count is 0
}

// SealedKind names a column that holds sealed values, for a re-seal pass.
type SealedKind int

const (
	SealedPSKPassword      SealedKind = 1 // PSKRecord.Password, by KeyID
	SealedCredentialSecret SealedKind = 2 // CredentialRecord.Secret, by KeyNumber
	SealedDeviceKey        SealedKind = 3 // DeviceRecord.SealedKey, by Tenant and DeviceID
)

// SealedValue is one sealed value in the store: its kind, the record it
// belongs to, and the value. The record's tenant and kind are part of what
// the value is sealed to (see AD), so a value moved to another tenant's
// record, or another kind of record, does not open.
type SealedValue struct {
	Kind SealedKind
	// ID is the record's keyid or keynumber; 0 for a device key.
	ID int64
	// Tenant is the record's tenant ("" for a CA certificate).
	Tenant string
	// DeviceID is a device key's device; "" otherwise.
	DeviceID string
	// CredentialKind is a credential secret's kind of credential; 0
	// otherwise.
	CredentialKind CredentialKind
	Value          []byte
}

// Legacy reports whether v.Value was sealed before sealed values named
// their record's tenant and kind (format byte 1); lifecycle's Reseal
// converts such values.
func (v SealedValue) Legacy() bool { return len(v.Value) > 0 && v.Value[0] == 1 }

// SealedOf names the sealed secret of a credential.
func SealedOf(r *CredentialRecord) SealedValue {
	return SealedValue{Kind: SealedCredentialSecret, ID: r.KeyNumber, Tenant: r.Tenant, CredentialKind: r.Kind, Value: r.Secret}
}

// Tx is the set of record operations of a Store. A Store is itself a Tx whose
// every call is atomic on its own; inside Store.Atomic the calls of one Tx
// commit or roll back together.
//
// Contract, for every method:
//   - ctx is honoured: a cancelled or expired ctx ends the call with an error
//     that wraps ctx.Err(); a Store never keeps ctx.
//   - A missing record gives an error wrapping ErrNotFound; a unique key taken
//     gives ErrExists; a failed compare-and-swap gives ErrConflict. A database
//     that cannot be reached gives ErrUnavailable; a lock not granted in time
//     gives ErrLockTimeout.
//   - Records passed in are not retained; records returned are the caller's.
//   - Times are stored in UTC with at least millisecond precision, and
//     returned in UTC; dates after 2038 are kept. A zero time.Time round-trips
//     as zero.
//   - A list method returns an empty slice, never ErrNotFound.
type Tx interface {
	// NextNumber returns the next number of seq. Numbers start at 1 and are
	// never handed out twice, whatever the concurrency and the number of Store
	// handles on the database; a rolled-back transaction may leave a gap.
	// Inside Atomic, the transaction holds seq until it ends: another
	// transaction's NextNumber of seq, on any handle, waits for it to commit
	// or roll back, so that a sequence serves as a lock (ca.Open creates a
	// CA once this way).
	NextNumber(ctx context.Context, seq Sequence) (int64, error)
	// NextNumbers reserves n (≥ 1) consecutive numbers of seq and returns
	// the first: no other call, on any handle, is handed any of them.
	NextNumbers(ctx context.Context, seq Sequence, n int) (int64, error)

	CreatePSK(ctx context.Context, r *PSKRecord) error // ErrExists on a taken KeyID
	GetPSK(ctx context.Context, keyID int64) (*PSKRecord, error)
	ListPSKs(ctx context.Context, q PSKQuery) ([]*PSKRecord, error)
	// SetPSKStatus sets the status of a PSK; ErrNotFound if absent.
	SetPSKStatus(ctx context.Context, keyID int64, s PSKStatus) error
	// DeletePSK removes a PSK; ErrNotFound if absent.
	DeletePSK(ctx context.Context, keyID int64) error

	// CreateDevice inserts a device; ErrExists when the tenant has a device
	// of that ID or that Name.
	CreateDevice(ctx context.Context, r *DeviceRecord) error
	// GetDevice returns the tenant's device by ID; a device of another
	// tenant is ErrNotFound.
	GetDevice(ctx context.Context, tenant, id string) (*DeviceRecord, error)
	GetDeviceByName(ctx context.Context, tenant, name string) (*DeviceRecord, error)
	ListDevices(ctx context.Context, q DeviceQuery) ([]*DeviceRecord, error)
	// UpdateDevice stores Status, IPAddress, MACAddress, ExtData, UpdatedAt
	// and ExpiresAt of the device named by r.Tenant and r.ID (the other
	// fields are fixed at creation); ErrNotFound if absent.
	UpdateDevice(ctx context.Context, r *DeviceRecord) error

	// CreateCredential inserts a credential; ErrExists on a taken KeyNumber
	// or a taken (CA, Serial).
	CreateCredential(ctx context.Context, r *CredentialRecord) error
	GetCredential(ctx context.Context, keyNumber int64) (*CredentialRecord, error)
	// GetCredentialBySerial finds a certificate by CA name and serial
	// (uppercase hex without leading zeros).
	GetCredentialBySerial(ctx context.Context, ca, serial string) (*CredentialRecord, error)
	ListCredentials(ctx context.Context, q CredentialQuery) ([]*CredentialRecord, error)
	// CredentialStats summarises the credentials q selects (q.After and
	// q.Limit are ignored): how many there are and the latest
	// StateChangedAt among them. It is one cheap query: the engine asks it
	// on every CRL request to tell whether the CRL it keeps is current.
	CredentialStats(ctx context.Context, q CredentialQuery) (CredentialStats, error)
	// TransitionCredential changes the state of a credential from t.From to
	// t.To and records t.At, t.Reason and t.ReplacedBy, atomically: if the
	// stored state is not t.From it changes nothing and returns ErrConflict.
	// Of any number of concurrent transitions from one state, exactly one
	// succeeds. ErrNotFound if the credential is absent.
	TransitionCredential(ctx context.Context, t Transition) error
	// DeleteCredential removes a credential with its bindings and notices
	// (retention); ErrNotFound if absent.
	DeleteCredential(ctx context.Context, keyNumber int64) error

	// PutNotice records a notice unless the credential has one of that
	// Kind already, and reports whether it recorded it. Of any number of
	// concurrent calls for one (KeyNumber, Kind), on any handles, exactly
	// one reports true. It is not an error inside a transaction (a
	// duplicate does not abort it).
	PutNotice(ctx context.Context, r *NoticeRecord) (bool, error)

	// PutBinding records bindings (in one statement where the database
	// allows), all of them or, on an error, none. Recording one that exists
	// already (same tenant, device, keynumber and path) changes nothing and
	// is not an error, also when two calls race.
	PutBinding(ctx context.Context, r ...*BindingRecord) error
	// ListBindings returns the bindings of a credential to a device, oldest
	// first.
	ListBindings(ctx context.Context, tenant, deviceID string, keyNumber int64) ([]*BindingRecord, error)
	// BindingsOf returns every binding of a credential, to any device of
	// its tenant, oldest first.
	BindingsOf(ctx context.Context, keyNumber int64) ([]*BindingRecord, error)
	// BindingsAt returns the bindings of a device at a path (to any
	// credential), newest first, at most limit.
	BindingsAt(ctx context.Context, tenant, deviceID, path string, limit int) ([]*BindingRecord, error)

	// CountAuthFailures counts failed authentications, all in one
	// transaction, and returns each pair's count after it, in the order
	// given. Each pair counts in fixed windows: a failure at or past
	// Since+Window (or of a pair not seen before) starts a window at At with
	// Count 1; any other adds 1. When Count reaches Limit the pair is locked
	// until At+Window, and a new window starts at At with Count 0. It also
	// raises FailuresUntil of the PSK (if it exists) to At+Window. Of any
	// number of concurrent calls, on any handles, none loses a count.
	CountAuthFailures(ctx context.Context, fs ...AuthFailure) ([]*AuthFailures, error)
	// GetAuthFailures returns the counts of keyID's pairs with the given
	// clients; pairs never counted are left out.
	GetAuthFailures(ctx context.Context, keyID int64, clients ...string) ([]*AuthFailures, error)
	// ClearAuthFailures forgets the failures of a pair; a pair never
	// counted is not an error.
	ClearAuthFailures(ctx context.Context, keyID int64, client string) error

	// ListSealed returns up to limit sealed values of kind that come after
	// the value after (the last of the previous page; the zero SealedValue
	// for the first), with their records' Tenant, DeviceID and
	// CredentialKind filled in: in ascending ID order, or for device keys in
	// ascending (Tenant, DeviceID) order. Empty values are left out.
	ListSealed(ctx context.Context, kind SealedKind, after SealedValue, limit int) ([]SealedValue, error)
	// ReplaceSealed swaps the sealed value of v's record (by v.Kind and
	// v.ID, or for a device key v.Tenant and v.DeviceID) from v.Value to
	// value; ErrConflict if the stored value is no longer v.Value.
	ReplaceSealed(ctx context.Context, v SealedValue, value []byte) error
}

// Store is the persistence driver of the engine. Implementations live in
// their own packages (see backends/) and prove themselves with the
// conformance suite in lifecycle/storetest.
//
// A Store is safe for concurrent use by many goroutines, and several Store
// handles (in one process or many) may share one database: uniqueness,
// sequences and compare-and-swap hold across all of them.
type Store interface {
	Tx

	// Atomic runs fn in a transaction and commits if fn returns nil, or
	// rolls back and returns fn's error. On a transient conflict of the
	// database (deadlock, serialization failure) the Store may roll back and
	// run fn again, so fn must have no effect outside tx and must not keep
	// tx after it returns. The Tx is not safe for concurrent use.
	Atomic(ctx context.Context, fn func(tx Tx) error) error

	// Ping checks that the database answers; ErrUnavailable if it does not.
	Ping(ctx context.Context) error

	// Close releases the Store's resources. A closed Store answers every
	// call with an error.
	Close() error
}
