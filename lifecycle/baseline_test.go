package lifecycle_test

// Baselines: the bare work of the engine's operations, measured next to
// them in the same run, so that a target can be a ratio (issue #7):
// keygen and signing alone, the same plus one row insert, one insert, one
// primary-key select.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"math/big"
	"strconv"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/credlife/clm/lifecycle"
)

// baselineCA is a P-256 CA certificate and key, like the local CA's.
func baselineCA(b *testing.B) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "baseline CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		b.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

// keygenSign is the bare work of issuing: a P-256 key and a certificate
// signed by the CA.
func keygenSign(b *testing.B, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	sn, _ := lifecycle.NewSerialNumber(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: "bench.example.com"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, DNSNames: []string{"bench.example.com"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		b.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert
}

func BenchmarkBaselineKeygenSign(b *testing.B) {
	ca, caKey := baselineCA(b)
	b.ReportAllocs()
	for b.Loop() {
		keygenSign(b, ca, caKey)
	}
}

// baselineRow is a row like a credential's, in a table of its own.
type baselineRow struct {
	ID          int64 `gorm:"primaryKey;autoIncrement:false"`
	Tenant      string
	Certificate []byte
	Secret      []byte
	NotAfter    int64
}

func BenchmarkBaselineKeygenSignInsert(b *testing.B) {
	s := openStore(b)
	db := s.DB()
	db.AutoMigrate(&baselineRow{})
	ca, caKey := baselineCA(b)
	var id int64
	b.ReportAllocs()
	for b.Loop() {
		key, cert := keygenSign(b, ca, caKey)
		der, _ := x509.MarshalPKCS8PrivateKey(key)
		id++
		if err := db.Create(&baselineRow{ID: id, Tenant: "t", Certificate: cert.Raw, Secret: der, NotAfter: cert.NotAfter.UnixMicro()}).Error; err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineInsert(b *testing.B) {
	s := openStore(b)
	db := s.DB()
	db.AutoMigrate(&baselineRow{})
	secret := make([]byte, 64)
	var id int64
	b.ReportAllocs()
	for b.Loop() {
		id++
		if err := db.Create(&baselineRow{ID: id, Tenant: "t", Secret: secret, NotAfter: 1}).Error; err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineSelect(b *testing.B) {
	s := openStore(b)
	db := s.DB()
	db.AutoMigrate(&baselineRow{})
	for i := range 1000 {
		if err := db.Create(&baselineRow{ID: int64(i + 1), Tenant: "t" + strconv.Itoa(i)}).Error; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		var r baselineRow // fresh: GORM adds a set primary key of the destination to the query
		if err := db.Where("id = ?", int64(i%1000+1)).Take(&r).Error; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineIssueP12 is bare issuance plus the PKCS#12 encoding
// (Modern2023), the baseline of PKCS#12 issue.
func BenchmarkBaselineIssueP12(b *testing.B) {
	ca, caKey := baselineCA(b)
	b.ReportAllocs()
	for b.Loop() {
		key, cert := keygenSign(b, ca, caKey)
		if _, err := pkcs12.Modern2023.Encode(key, cert, nil, "pfx-pass"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineCreateKeySQL is the floor under a symmetric-key
// creation on SQLite: the statements CreateKey runs (PSK and device
// lookups, the replay check, the credential and binding inserts, in one
// IMMEDIATE transaction), prepared once and run through database/sql on
// the store's own schema, with no engine around them.
func BenchmarkBaselineCreateKeySQL(b *testing.B) {
	ctx := context.Background()
	s := openStore(b)
	db, err := s.DB().DB()
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO clm_psks (key_id, tenant, alias, password, status, created_at, expires_at) VALUES (1, 't', 'a', x'00', 1, 0, 0)`,
		`INSERT INTO clm_devices (tenant, id, name, key_hash, status, ip_address, mac_address, ext_data, created_at, updated_at, expires_at)
			VALUES ('t', 'd', 'd', x'00', 1, '', '', '{}', 0, 0, 0)`,
	} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	prepare := func(q string) *sql.Stmt {
		st, err := db.Prepare(q)
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	psk := prepare(`SELECT key_id, tenant, alias, password, status, created_at, expires_at FROM clm_psks WHERE key_id = ?`)
	dev := prepare(`SELECT tenant, id, name, key_hash, status, ip_address, mac_address, ext_data, created_at, updated_at, expires_at
		FROM clm_devices WHERE tenant = ? AND id = ?`)
	replay := prepare(`SELECT id FROM clm_bindings WHERE tenant = ? AND device_id = ? AND path_hash = ? ORDER BY id DESC LIMIT 1`)
	cred := prepare(`INSERT INTO clm_credentials (key_number, tenant, kind, state, ca, serial, subject, alias, key_type, key_length,
		certificate, secret, not_before, not_after, created_at, state_changed_at, reason, replaced_by)
		VALUES (?, 't', 3, 1, '', NULL, '', 'k', 'AES', 128, NULL, ?, 0, 0, 0, 0, 0, 0)`)
	bind := prepare(`INSERT INTO clm_bindings (tenant, device_id, key_number, path_hash, path, created_at) VALUES ('t', 'd', ?, ?, ?, 0)`)
	secret := make([]byte, 60) // a sealed AES-128 key's size
	var row [11]any
	for i := range row {
		row[i] = new(any)
	}
	var kn int64
	b.ReportAllocs()
	for b.Loop() {
		kn++
		path := "/k" + strconv.FormatInt(kn, 10)
		hash := sha256.Sum256([]byte(path))
		if err := psk.QueryRowContext(ctx, 1).Scan(row[:7]...); err != nil {
			b.Fatal(err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := tx.StmtContext(ctx, dev).QueryRowContext(ctx, "t", "d").Scan(row[:]...); err != nil {
			b.Fatal(err)
		}
		if err := tx.StmtContext(ctx, replay).QueryRowContext(ctx, "t", "d", hex.EncodeToString(hash[:])).Scan(row[0]); err != sql.ErrNoRows {
			b.Fatal(err)
		}
		if _, err := tx.StmtContext(ctx, cred).ExecContext(ctx, kn, secret); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.StmtContext(ctx, bind).ExecContext(ctx, kn, hex.EncodeToString(hash[:]), path); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}
