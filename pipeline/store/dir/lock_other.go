//go:build !unix

package dir

// lockPath is a no-op where flock is unavailable: only the in-process mutex serialises writers.
func lockPath(string) (func(), error) { return func() {}, nil }
