// Package batchgc paces the garbage collector by a memory limit instead of GOGC while the CLI
// does batch work whose garbage is large and short-lived and whose live heap is small: bulk
// verification makes about 280 KB of garbage per bundle (JSON decoding and canonicalisation in
// sigstore-go and rekor) and keeps a few hundred bytes of result per bundle. Paced by GOGC, the
// collector runs every few megabytes, about a seventh of the time of verifying 200 bundles;
// paced by a memory limit, it runs when the process nears the limit, so memory stays bounded.
//
// The collector's settings belong to the process, so this package keeps the one count of the
// batch phases in progress: the first Begin sets the pacing, the last end puts back what was
// in force. When the user set GOGC or GOMEMLIMIT, nothing is changed.
package batchgc

import (
	"os"
	"runtime/debug"
	"sync"
)

// Limit is the soft memory limit the collector is paced by during batch work.
const Limit = 256 << 20

// state is the process's collector setting outside batch phases and the phases in progress.
var state struct {
	mu      sync.Mutex
	active  int
	percent int
	limit   int64
}

// Begin paces the collector by Limit until the returned end is called (later calls of end do
// nothing).
func Begin() (end func()) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	state.mu.Lock()
	if state.active == 0 {
		state.limit = debug.SetMemoryLimit(Limit)
		state.percent = debug.SetGCPercent(-1)
	}
	state.active++
	state.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			state.mu.Lock()
			defer state.mu.Unlock()
			if state.active--; state.active == 0 {
				debug.SetGCPercent(state.percent)
				debug.SetMemoryLimit(state.limit)
			}
		})
	}
}
