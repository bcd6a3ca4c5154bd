// Package initgc turns the garbage collector off while the CLI's packages initialise and lets
// main turn it back on. The CLI links large libraries (syft, sigstore, the GCP and AWS SDKs)
// whose package initialisation allocates about 14 MB that all stays live; collecting during it
// is wasted work that made every call, even --help, about a third slower. Go initialises a
// package as soon as it is the lexically first one whose dependencies are ready, so this one
// (which depends only on runtime/debug) runs before most of the libraries (about 10 of the
// 14 MB are allocated after it).
package initgc

import "runtime/debug"

// percent is the GC target in force when the process started ($GOGC, default 100).
var percent = debug.SetGCPercent(-1)

// Restore turns the collector back on with the target the process started with; the main
// package's init calls it, once every library is initialised.
func Restore() { debug.SetGCPercent(percent) }
