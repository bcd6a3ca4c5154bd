// Package outcome holds the exit codes of SPEC §9, the typed errors that map onto
// them, and the log-line format shared by the CLI, the scripts and the Dagger layer.
package outcome

import "fmt"

// Exit codes shared by the CLI, scripts/ and the Dagger functions (SPEC §9).
const (
	// OK is success.
	OK = 0
	// General is any error that is not one of the kinds below.
	General = 1
	// Usage is a bad argument, flag, tag or input file shape given by the caller.
	Usage = 2
	// VerificationFailed is a check that ran and found the release or input wrong.
	VerificationFailed = 10
	// MissingAsset is a required release asset that is not there.
	MissingAsset = 11
)

// Kind classifies an error for its exit code.
type Kind int

// The kinds of error, each with its exit code.
const (
	KindGeneral Kind = iota
	KindUsage
	KindVerification
	KindMissingAsset
)

// Code is the exit code of the kind.
func (k Kind) Code() int {
	switch k {
	case KindUsage:
		return Usage
	case KindVerification:
		return VerificationFailed
	case KindMissingAsset:
		return MissingAsset
	default:
		return General
	}
}

// Error is an error with a kind; wrap it with fmt.Errorf("...: %w", err) freely,
// Code still finds it.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// UsageErrorf is a usage error (exit 2): a malformed tag, a bad flag, an unparsable input.
func UsageErrorf(format string, args ...any) error {
	return &Error{Kind: KindUsage, Err: fmt.Errorf(format, args...)}
}

// VerificationErrorf is a verification failure (exit 10).
func VerificationErrorf(format string, args ...any) error {
	return &Error{Kind: KindVerification, Err: fmt.Errorf(format, args...)}
}

// MissingAssetErrorf is a missing required asset (exit 11).
func MissingAssetErrorf(format string, args ...any) error {
	return &Error{Kind: KindMissingAsset, Err: fmt.Errorf(format, args...)}
}

// Code returns the exit code for err: 0 for nil, the kind's code for an *Error anywhere
// in the chain (the most severe one when errors are joined), 1 otherwise.
func Code(err error) int {
	if err == nil {
		return OK
	}
	best := -1
	visit(err, func(e *Error) {
		if c := e.Kind.Code(); c > best {
			best = c
		}
	})
	if best < 0 {
		return General
	}
	return best
}

// visit calls fn on every *Error in err's tree, following both Unwrap forms.
func visit(err error, fn func(*Error)) {
	if err == nil {
		return
	}
	if e, ok := err.(*Error); ok {
		fn(e)
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, inner := range u.Unwrap() {
			visit(inner, fn)
		}
	case interface{ Unwrap() error }:
		visit(u.Unwrap(), fn)
	}
}

// Is reports whether err carries the given kind.
func Is(err error, k Kind) bool {
	found := false
	visit(err, func(e *Error) {
		if e.Kind == k {
			found = true
		}
	})
	return found
}
