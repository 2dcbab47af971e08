package gormstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"time"

	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// SchemaVersion is the version of the schema this package creates. Open
// upgrades an older schema to it and refuses a newer one. Version 3: text
// compares byte for byte on MySQL/MariaDB too (a NO PAD collation; before,
// 'tenantB' = 'tenantB '); failed authentications are counted in the store
// (clm_auth_failures, clm_psks.failures_until); the device key column holds
// the sealed key. Version 4: notices (clm_notices) and an index on
// credentials' end of validity. Version 5: the bindings' unique index
// begins with the keynumber (clm_bindings_key), which makes the
// keynumber's own index redundant: it is dropped, one B-tree fewer to
// write per binding.
const SchemaVersion = 5

// droppedIndexes are indexes of older schemas that Open drops, once the
// indexes that replace them exist.
var droppedIndexes = []struct {
	model any
	name  string
}{
	{&bindingRow{}, "clm_bindings_unique"},    // (tenant, device_id, key_number, path_hash): clm_bindings_key
	{&bindingRow{}, "clm_bindings_keynumber"}, // (key_number): clm_bindings_key's first column
}

// The tables. Times are microseconds since the Unix epoch, UTC, in BIGINT
// columns: exact, portable, and past 2038. Text columns that are compared or
// ordered compare byte for byte: case-sensitive, and trailing spaces count
// (a binary NO PAD collation on MySQL/MariaDB).

type schemaRow struct {
	ID        int   `gorm:"primaryKey;autoIncrement:false"`
	Version   int   `gorm:"not null"`
	UpdatedAt int64 `gorm:"not null;autoUpdateTime:false"`
}

func (schemaRow) TableName() string { return "clm_schema" }

type sequenceRow struct {
	Name  string `gorm:"primaryKey;size:32"`
	Value int64  `gorm:"not null"`
}

func (sequenceRow) TableName() string { return "clm_sequences" }

type pskRow struct {
	KeyID     int64  `gorm:"primaryKey;autoIncrement:false"`
	Tenant    string `gorm:"size:128;not null;index:clm_psks_tenant_keyid,priority:1"`
	Alias     string `gorm:"size:256;not null"`
	Password  []byte `gorm:"not null"`
	Status    int    `gorm:"not null"`
	CreatedAt int64  `gorm:"not null;autoCreateTime:false"`
	ExpiresAt int64  `gorm:"not null"`
	// FailuresUntil: see driver.PSKRecord (schema 3).
	FailuresUntil int64 `gorm:"not null;default:0"`
}

func (pskRow) TableName() string { return "clm_psks" }

const pskColumns = "key_id, tenant, alias, password, status, created_at, expires_at, failures_until"

// fields are the row's fields in the order of pskColumns.
func (p *pskRow) fields() []any {
	return []any{&p.KeyID, &p.Tenant, &p.Alias, &p.Password, &p.Status, &p.CreatedAt, &p.ExpiresAt, &p.FailuresUntil}
}

// authFailureRow counts the failed authentications of a PSK from a client
// (schema 3).
type authFailureRow struct {
	KeyID       int64  `gorm:"primaryKey;autoIncrement:false"`
	Client      string `gorm:"primaryKey;size:64"`
	Count       int    `gorm:"not null"`
	Since       int64  `gorm:"not null"`
	LockedUntil int64  `gorm:"not null"`
}

func (authFailureRow) TableName() string { return "clm_auth_failures" }

func (a *authFailureRow) record() *driver.AuthFailures {
	r := &driver.AuthFailures{KeyID: a.KeyID, Client: a.Client, Count: a.Count, Since: fromMicros(a.Since)}
	if a.LockedUntil != 0 {
		r.LockedUntil = fromMicros(a.LockedUntil)
	}
	return r
}

type deviceRow struct {
	Tenant     string `gorm:"primaryKey;size:128;uniqueIndex:clm_devices_tenant_name,priority:1"`
	ID         string `gorm:"primaryKey;size:64"`
	Name       string `gorm:"size:256;not null;uniqueIndex:clm_devices_tenant_name,priority:2"`
	KeyHash    []byte `gorm:"not null"` // the sealed device key (a keyed hash before schema 3)
	Status     int    `gorm:"not null"`
	IPAddress  string `gorm:"size:64;not null"`
	MACAddress string `gorm:"size:17;not null"`
	ExtData    string `gorm:"type:text;not null"`
	CreatedAt  int64  `gorm:"not null;autoCreateTime:false"`
	UpdatedAt  int64  `gorm:"not null;autoUpdateTime:false"`
	ExpiresAt  int64  `gorm:"not null"`
}

func (deviceRow) TableName() string { return "clm_devices" }

const deviceColumns = "tenant, id, name, key_hash, status, ip_address, mac_address, ext_data, created_at, updated_at, expires_at"

// fields are the row's fields in the order of deviceColumns.
func (d *deviceRow) fields() []any {
	return []any{&d.Tenant, &d.ID, &d.Name, &d.KeyHash, &d.Status, &d.IPAddress, &d.MACAddress, &d.ExtData,
		&d.CreatedAt, &d.UpdatedAt, &d.ExpiresAt}
}

type credentialRow struct {
	KeyNumber      int64   `gorm:"primaryKey;autoIncrement:false"`
	Tenant         string  `gorm:"size:128;not null;index:clm_credentials_tenant,priority:1"`
	Kind           int     `gorm:"not null;index:clm_credentials_tenant,priority:2"`
	State          int     `gorm:"not null;index:clm_credentials_ca_state,priority:2"`
	CA             string  `gorm:"column:ca;size:64;not null;uniqueIndex:clm_credentials_ca_serial,priority:1;index:clm_credentials_ca_state,priority:1"`
	Serial         *string `gorm:"size:64;uniqueIndex:clm_credentials_ca_serial,priority:2"`
	Subject        string  `gorm:"size:1024;not null"`
	Alias          string  `gorm:"size:256;not null"`
	KeyType        string  `gorm:"size:32;not null"`
	KeyLength      int     `gorm:"not null"`
	Certificate    []byte
	Secret         []byte
	NotBefore      int64 `gorm:"not null"`
	NotAfter       int64 `gorm:"not null;index:clm_credentials_expiry"`
	CreatedAt      int64 `gorm:"not null;autoCreateTime:false"`
	StateChangedAt int64 `gorm:"not null"`
	Reason         int   `gorm:"not null"`
	ReplacedBy     int64 `gorm:"not null"`
}

func (credentialRow) TableName() string { return "clm_credentials" }

const credentialColumns = "key_number, tenant, kind, state, ca, serial, subject, alias, key_type, key_length, " +
	"certificate, secret, not_before, not_after, created_at, state_changed_at, reason, replaced_by"

// fields are the row's fields in the order of credentialColumns.
func (c *credentialRow) fields() []any {
	return []any{&c.KeyNumber, &c.Tenant, &c.Kind, &c.State, &c.CA, &c.Serial, &c.Subject, &c.Alias, &c.KeyType, &c.KeyLength,
		&c.Certificate, &c.Secret, &c.NotBefore, &c.NotAfter, &c.CreatedAt, &c.StateChangedAt, &c.Reason, &c.ReplacedBy}
}

// bindingRow is a binding. Its two indexes serve every query: by
// keynumber (BindingsOf, deletions), by keynumber and device (ListBindings)
// through clm_bindings_key; by device and path (BindingsAt) and by device
// through clm_bindings_device_path.
type bindingRow struct {
	ID        int64  `gorm:"primaryKey;autoIncrement"`
	Tenant    string `gorm:"size:128;not null;uniqueIndex:clm_bindings_key,priority:2;index:clm_bindings_device_path,priority:1"`
	DeviceID  string `gorm:"size:64;not null;uniqueIndex:clm_bindings_key,priority:3;index:clm_bindings_device_path,priority:2"`
	KeyNumber int64  `gorm:"not null;uniqueIndex:clm_bindings_key,priority:1"`
	PathHash  string `gorm:"size:64;not null;uniqueIndex:clm_bindings_key,priority:4;index:clm_bindings_device_path,priority:3"`
	Path      string `gorm:"size:1024;not null"`
	CreatedAt int64  `gorm:"not null;autoCreateTime:false"`
}

func (bindingRow) TableName() string { return "clm_bindings" }

// bindingColumns are the columns of a binding but its generated id.
const bindingColumns = "tenant, device_id, key_number, path_hash, path, created_at"

// fields are the row's fields in the order of "id, " + bindingColumns.
func (b *bindingRow) fields() []any {
	return []any{&b.ID, &b.Tenant, &b.DeviceID, &b.KeyNumber, &b.PathHash, &b.Path, &b.CreatedAt}
}

// valuesOf returns the values that fields (pointers, as fields() gives them)
// point to: the arguments of an INSERT of the same columns.
func valuesOf(fields []any) []any {
	out := make([]any, len(fields))
	for i, f := range fields {
		out[i] = reflect.ValueOf(f).Elem().Interface()
	}
	return out
}

var models = []any{&schemaRow{}, &sequenceRow{}, &pskRow{}, &deviceRow{}, &credentialRow{}, &bindingRow{}, &authFailureRow{}, &noticeRow{}}

// noticeRow records a notice given about a credential (schema 4).
type noticeRow struct {
	KeyNumber int64  `gorm:"primaryKey;autoIncrement:false"`
	Kind      string `gorm:"primaryKey;size:32"`
	At        int64  `gorm:"not null"`
}

func (noticeRow) TableName() string { return "clm_notices" }

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func pathHash(p string) string {
	h := sha256.Sum256([]byte(p))
	return hex.EncodeToString(h[:])
}

func toPSKRow(r *driver.PSKRecord) *pskRow {
	p := &pskRow{
		KeyID: r.KeyID, Tenant: r.Tenant, Alias: r.Alias, Password: r.Password,
		Status: int(r.Status), CreatedAt: micros(r.CreatedAt), ExpiresAt: micros(r.ExpiresAt),
	}
	if !r.FailuresUntil.IsZero() {
		p.FailuresUntil = micros(r.FailuresUntil)
	}
	return p
}

func (p *pskRow) record() *driver.PSKRecord {
	r := &driver.PSKRecord{
		KeyID: p.KeyID, Tenant: p.Tenant, Alias: p.Alias, Password: p.Password,
		Status: lifecycle.PSKStatus(p.Status), CreatedAt: fromMicros(p.CreatedAt), ExpiresAt: fromMicros(p.ExpiresAt),
	}
	if p.FailuresUntil != 0 {
		r.FailuresUntil = fromMicros(p.FailuresUntil)
	}
	return r
}

func toDeviceRow(r *driver.DeviceRecord) (*deviceRow, error) {
	ext := "{}"
	if len(r.ExtData) > 0 {
		b, err := json.Marshal(r.ExtData)
		if err != nil {
			return nil, err
		}
		ext = string(b)
	}
	return &deviceRow{
		Tenant: r.Tenant, ID: r.ID, Name: r.Name, KeyHash: r.SealedKey, Status: int(r.Status),
		IPAddress: r.IPAddress, MACAddress: r.MACAddress, ExtData: ext,
		CreatedAt: micros(r.CreatedAt), UpdatedAt: micros(r.UpdatedAt), ExpiresAt: micros(r.ExpiresAt),
	}, nil
}

func (d *deviceRow) record() (*driver.DeviceRecord, error) {
	var ext map[string]string
	if d.ExtData != "" && d.ExtData != "{}" {
		if err := json.Unmarshal([]byte(d.ExtData), &ext); err != nil {
			return nil, err
		}
	}
	return &driver.DeviceRecord{
		Tenant: d.Tenant, ID: d.ID, Name: d.Name, SealedKey: d.KeyHash, Status: lifecycle.DeviceStatus(d.Status),
		IPAddress: d.IPAddress, MACAddress: d.MACAddress, ExtData: ext,
		CreatedAt: fromMicros(d.CreatedAt), UpdatedAt: fromMicros(d.UpdatedAt), ExpiresAt: fromMicros(d.ExpiresAt),
	}, nil
}

func toCredentialRow(r *driver.CredentialRecord) *credentialRow {
	var serial *string
	if r.Serial != "" {
		s := r.Serial
		serial = &s
	}
	return &credentialRow{
		KeyNumber: r.KeyNumber, Tenant: r.Tenant, Kind: int(r.Kind), State: int(r.State), CA: r.CA, Serial: serial,
		Subject: r.Subject, Alias: r.Alias, KeyType: r.KeyType, KeyLength: r.KeyLength,
		Certificate: r.Certificate, Secret: r.Secret,
		NotBefore: micros(r.NotBefore), NotAfter: micros(r.NotAfter), CreatedAt: micros(r.CreatedAt),
		StateChangedAt: micros(r.StateChangedAt), Reason: r.Reason, ReplacedBy: r.ReplacedBy,
	}
}

func (c *credentialRow) record() *driver.CredentialRecord {
	r := &driver.CredentialRecord{
		KeyNumber: c.KeyNumber, Tenant: c.Tenant, Kind: driver.CredentialKind(c.Kind), State: driver.CredentialState(c.State),
		CA: c.CA, Subject: c.Subject, Alias: c.Alias, KeyType: c.KeyType, KeyLength: c.KeyLength,
		Certificate: c.Certificate, Secret: c.Secret,
		NotBefore: fromMicros(c.NotBefore), NotAfter: fromMicros(c.NotAfter), CreatedAt: fromMicros(c.CreatedAt),
		StateChangedAt: fromMicros(c.StateChangedAt), Reason: c.Reason, ReplacedBy: c.ReplacedBy,
	}
	if c.Serial != nil {
		r.Serial = *c.Serial
	}
	return r
}

func toBindingRow(r *driver.BindingRecord) *bindingRow {
	return &bindingRow{
		Tenant: r.Tenant, DeviceID: r.DeviceID, KeyNumber: r.KeyNumber,
		PathHash: pathHash(r.Path), Path: r.Path, CreatedAt: micros(r.CreatedAt),
	}
}

func (b *bindingRow) record() *driver.BindingRecord {
	return &driver.BindingRecord{
		Tenant: b.Tenant, DeviceID: b.DeviceID, KeyNumber: b.KeyNumber, Path: b.Path, CreatedAt: fromMicros(b.CreatedAt),
	}
}
