package batchgc

import (
	"math"
	"runtime/debug"
	"testing"
)

// settings returns the collector's GC percent and memory limit without changing them.
func settings() (int, int64) {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p, debug.SetMemoryLimit(-1)
}

func TestBeginPacesByLimitUntilTheLastEnd(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
	endA := Begin()
	if p, l := settings(); p != -1 || l != Limit {
		t.Fatalf("in a batch: GC percent %d, limit %d; want -1, %d", p, l, Limit)
	}
	endB := Begin()
	endA()
	endA() // a second call does nothing
	if p, l := settings(); p != -1 || l != Limit {
		t.Fatalf("one batch still running: GC percent %d, limit %d", p, l)
	}
	endB()
	if p, l := settings(); p != 100 || l != math.MaxInt64 {
		t.Fatalf("after the batches: GC percent %d, limit %d; want 100 and no limit", p, l)
	}
}

func TestBeginLeavesTheUsersPacing(t *testing.T) {
	t.Setenv("GOGC", "50")
	debug.SetGCPercent(50)
	defer debug.SetGCPercent(100)
	end := Begin()
	if p, l := settings(); p != 50 || l != math.MaxInt64 {
		t.Fatalf("with GOGC set: GC percent %d, limit %d", p, l)
	}
	end()
}
