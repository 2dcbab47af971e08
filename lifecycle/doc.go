// Package lifecycle is the engine of clm: the lifecycle of device credentials
// (pre-shared keys, devices, X.509 certificates, symmetric keys) behind one
// Manager interface, over a pluggable store (a driver.Store of package
// lifecycle/driver, which embedders only open and hand to New).
//
// Build a Manager from a store and a key-encryption key, then call it:
//
//	store, err := sqlitestore.Open(ctx, "clm.db", nil)          // or mysqlstore, postgresstore
//	keys, err := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: kek}) // 32 bytes, kept outside the database
//	ca1, err := ca.Open(ctx, store, keys, nil)                   // a local CA; only certificates need one
//	m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
//
//	psk, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: "gateways"})
//	creds := lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: psk.Password}
//	caller, err := m.AuthenticatePSK(ctx, creds)
//	err = m.DeletePSK(ctx, creds)
//
// The operations are those of the CLM WebAPI v10 protocol, which package
// httpadapter serves over HTTP: IDInfo (PSKs), CredInfo (certificates),
// KeyInfo (symmetric keys) and SystemStatus. Requests that a device makes
// carry its PSKCredentials and a DeviceRequest; a device registers on its
// first request and receives its device id and key once.
//
// # Tenancy
//
// A PSK belongs to a tenant; a device belongs to the tenant of the PSK that
// registered it, and so do its credentials. Another tenant's device or
// credential answers exactly as an absent one.
//
// # Errors
//
// Every error a Manager returns is an *Error carrying a CLM Code (spec §9).
// A Code is itself an error value, so callers test with errors.Is:
//
//	if errors.Is(err, lifecycle.CodePasswordMismatch) { ... }
//
// and CodeOf(err) gives the code of any error. Checks run in a fixed order,
// so the answer to a request is deterministic: required fields (1102),
// formats (1103), limits (1104), then the PSK (1201–1204), then the device
// (1701–1706), then the credential and its state. A request that fails
// changes nothing. Error texts never contain a secret or a value of the
// request.
//
// # Secrets
//
// PSK passwords, private keys, symmetric keys and device keys are sealed at
// rest with AES-256-GCM under a key-encryption key (KEK) that a KeySource
// supplies; each sealed value names its KEK version and is bound to its
// record's kind, tenant and id, so a value copied into another row, or a
// row moved to another tenant, does not open (CodeDecrypt). Engine.Reseal
// moves every value to a new KEK (and converts values sealed by older
// versions). Secret and SecretBytes never print: fmt, log/slog and
// encoding/json show "[REDACTED]". Comparisons of secrets run in constant
// time.
//
// # Brute force and expensive work
//
// Wrong PSK passwords are counted in the store per PSK and client address
// (WithClientAddress) and per PSK: Options.AuthFailures (10) from one
// address, or Options.AuthFailuresPerPSK (100) from all, within
// Options.AuthWindow (5 minutes) lock the pair, or the PSK, for the window,
// in every engine on the store. Requests that do expensive work (a
// passphrase's PBKDF2, PKCS#12, an RSA key on the request's path) run
// Options.ExpensiveConcurrency at a time, so that they cannot starve cheap
// ones; and no key is generated or signed before the checks that can fail
// without one.
//
// # Concurrency
//
// An Engine is safe for concurrent use, and several engines, in one process
// or in many, may share one database: numbers come from store sequences that
// never repeat, uniqueness is enforced by the database, and state changes
// are compare-and-swap transitions of which exactly one wins.
//
// # Writing a backend
//
// A backend implements driver.Store of package lifecycle/driver (a
// driver.Tx plus Atomic, Ping and Close; the contracts are on the
// interfaces) and runs the conformance suite of package lifecycle/storetest
// from its tests. Package backends/memstore is the reference
// implementation; backends/gormstore serves SQLite, MariaDB/MySQL and
// PostgreSQL.
// A certificate authority implements CA and runs lifecycle/catest; package
// ca is the local one.
package lifecycle
