// Package lazyre compiles a package's regular expressions when first used instead of at
// start-up: a package-level regexp.MustCompile runs in every call of the CLI, even --help,
// and the project's packages held some 45 of them.
package lazyre

import (
	"regexp"
	"sync"
)

// New returns a function that compiles expr on its first call (panicking, as
// regexp.MustCompile, when expr is invalid) and returns the same *regexp.Regexp on every call.
func New(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
