// Package examples holds runnable programs that use clm; each is in its own
// folder (quickstart: the PSK and device lifecycles on SQLite).
package examples
