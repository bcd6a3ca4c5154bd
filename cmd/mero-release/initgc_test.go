package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// The collector is off only while the libraries initialise: once the main package is
// initialised it runs with the target the process started with.
func TestCollectorOnAfterInit(t *testing.T) {
	prev := debug.SetGCPercent(-1)
	debug.SetGCPercent(prev)
	if prev < 0 && os.Getenv("GOGC") != "off" {
		t.Fatalf("GC percent %d after initialisation: the collector was left off", prev)
	}
}
