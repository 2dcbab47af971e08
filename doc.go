// Package clm manages the lifecycle of device credentials: pre-shared keys
// (an ID and a password), X.509 certificates with keys generated on the
// server, and symmetric keys (AES and NEC's lightweight TWINE cipher), bound
// to a registry of devices, for many tenants, stored in SQLite, MariaDB/MySQL
// or PostgreSQL.
//
// Start with package lifecycle: its Manager interface is the whole API, and
// lifecycle.New builds the engine that implements it over a Store. The
// packages around it:
//
//   - lifecycle: the Manager, the engine, errors with CLM codes, sealing of
//     secrets, and the Store driver interface.
//   - lifecycle/storetest: the conformance suite every Store runs.
//   - backends/sqlitestore, backends/mysqlstore, backends/postgresstore:
//     open a Store on each database (backends/gormstore is the shared GORM
//     implementation). Importing one links only its own SQL driver.
//   - ca: certificate authorities that sign for the engine.
//   - cipher and cipher/twine: symmetric key types and the TWINE block cipher.
//   - httpadapter: the CLM WebAPI v10 wire protocol (NEC SecureWare/Credential
//     Lifecycle Manager) as a net/http Handler, so existing device agents and
//     scripts work against a Go service unchanged.
//   - examples: runnable programs.
//
// This package holds no code; it is the overview.
package clm
