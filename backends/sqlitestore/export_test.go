package sqlitestore

// SetRestartFrames lowers the WAL length (in frames) at which the
// background checkpoint restarts the log, and with it the quarter of it at
// which it holds off the writers to catch up, so that a test reaches them
// with little data; the returned function puts it back.
func SetRestartFrames(n int) (restore func()) {
	old := restartFrames
	restartFrames = n
	return func() { restartFrames = old }
}
