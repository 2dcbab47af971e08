// Package examples holds runnable programs that use clm, each in its own
// folder:
//
//   - clmserver: the CLM v10 server (make run).
//   - embed: the engine embedded in a Go program, without HTTP.
//   - device: a device-side agent using httpadapter/client: first
//     enrolment, renewal before expiry, key rotation.
package examples
