// Package httpadapter will serve the CLM WebAPI v10 wire protocol (NEC
// SecureWare/Credential Lifecycle Manager) over net/http, on top of any
// lifecycle.Manager, so that existing device agents and scripts work against
// a Go service unchanged.
//
// It is empty for now; the protocol is described in the project's
// v10-protocol.md, and the Go API it will serve is lifecycle.Manager.
package httpadapter
