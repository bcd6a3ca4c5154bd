// Package pipeline is the mero-release library: every rule, schema, format and check of the
// release process lives in its sub-packages, which the CLI (cmd/mero-release), the Dagger
// module and the scripts call. Imports flow one way: nothing under pipeline/ imports cmd/ or
// the sample product it releases (examples/), which imports_test.go checks. This package
// itself has no code.
package pipeline
