package checksum

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// Status is the verdict on one file.
type Status string

// The verdicts of Verify.
const (
	// StatusOK is a listed file whose content matches its digest.
	StatusOK Status = "ok"
	// StatusMismatch is a listed file whose content does not match its digest (exit 10).
	StatusMismatch Status = "mismatch"
	// StatusMissing is a listed file that is not there (exit 11).
	StatusMissing Status = "missing"
	// StatusUnlisted is a file that is there but not listed and not allowed (exit 10).
	StatusUnlisted Status = "unlisted"
	// StatusError is a listed file that could not be read (exit 1).
	StatusError Status = "error"
)

// Result is the verdict on one file.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Expected is the digest in the checksum file (listed files only).
	Expected string `json:"expected,omitempty"`
	// Actual is the digest of the content (files that were read).
	Actual string `json:"actual,omitempty"`
	// Detail explains a failure.
	Detail string `json:"detail,omitempty"`
}

// Report lists the verdict on every listed and every unlisted file, sorted by name.
type Report struct {
	Results []Result `json:"results"`
}

// OK reports whether every file verified and none is unlisted.
func (r Report) OK() bool { return len(r.Problems()) == 0 }

// Problems returns the results that are not StatusOK.
func (r Report) Problems() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Status != StatusOK {
			out = append(out, res)
		}
	}
	return out
}

// Count returns how many results have the status.
func (r Report) Count(s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

// Err returns nil when the report is OK, else every problem joined: missing files as
// missing-asset errors (exit 11), mismatching and unlisted files as verification errors
// (exit 10), unreadable files as general errors.
func (r Report) Err() error {
	var errs []error
	for _, res := range r.Problems() {
		switch res.Status {
		case StatusMissing:
			errs = append(errs, outcome.MissingAssetErrorf("%s: %s", res.Name, res.Detail))
		case StatusMismatch, StatusUnlisted:
			errs = append(errs, outcome.VerificationErrorf("%s: %s", res.Name, res.Detail))
		default:
			errs = append(errs, fmt.Errorf("%s: %s", res.Name, res.Detail))
		}
	}
	return errors.Join(errs...)
}

// VerifyOptions controls Verify and VerifyFS.
type VerifyOptions struct {
	// AllowUnlisted are path.Match patterns of files that may be present without being
	// listed, such as "checksums.sha256" or "*.sigstore.json".
	AllowUnlisted []string
	// AllowUnlistedFunc, when set, also allows every unlisted file it returns true for.
	AllowUnlistedFunc func(name string) bool
	// Workers bounds how many files are hashed at once; 0 means GOMAXPROCS.
	Workers int
}

// allowed reports whether an unlisted name is allowed.
func (o VerifyOptions) allowed(name string) bool {
	for _, p := range o.AllowUnlisted {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return o.AllowUnlistedFunc != nil && o.AllowUnlistedFunc(name)
}

// validate checks the patterns.
func (o VerifyOptions) validate() error {
	for _, p := range o.AllowUnlisted {
		if _, err := path.Match(p, ""); err != nil {
			return outcome.UsageErrorf("allow-unlisted pattern %q: %v", p, err)
		}
	}
	return nil
}

// Verify checks every file of f against its content under dir, and every other file under
// dir (recursively) against opts.AllowUnlisted. The report lists every problem, not only
// the first; the error is Report.Err (nil when all is well) or an error that stopped the
// verification itself (an unreadable directory, a bad pattern).
func Verify(ctx context.Context, dir string, f File, opts VerifyOptions) (Report, error) {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Report{}, outcome.UsageErrorf("checksum verify: directory %s does not exist", dir)
	case err != nil:
		return Report{}, fmt.Errorf("checksum verify: %w", err)
	case !info.IsDir():
		return Report{}, outcome.UsageErrorf("checksum verify: %s is not a directory", dir)
	}
	return VerifyFS(ctx, os.DirFS(dir), f, opts)
}

// VerifyFS is Verify over any file system.
func VerifyFS(ctx context.Context, fsys fs.FS, f File, opts VerifyOptions) (Report, error) {
	if err := opts.validate(); err != nil {
		return Report{}, err
	}
	var present []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			present = append(present, p)
		}
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("checksum verify: list files: %w", err)
	}
	var unlisted []string
	for _, p := range present {
		if _, listed := f.Lookup(p); !listed && !opts.allowed(p) {
			unlisted = append(unlisted, p)
		}
	}
	open := func(name string) (io.ReadCloser, error) { return fsys.Open(name) }
	return verify(ctx, open, f, unlisted, opts.Workers)
}

// VerifyFrom verifies f against files read through open, for example the assets of a
// release in a store. open must return an error wrapping fs.ErrNotExist for a file that
// does not exist (reported as missing); any other error is reported as unreadable. names,
// when not nil, are the files the source holds that must all be listed: any of them not
// in f is reported as unlisted.
func VerifyFrom(ctx context.Context, open func(name string) (io.ReadCloser, error), f File, names []string) (Report, error) {
	var unlisted []string
	for _, n := range names {
		if _, listed := f.Lookup(n); !listed {
			unlisted = append(unlisted, n)
		}
	}
	return verify(ctx, open, f, unlisted, 0)
}

// verify hashes every entry of f and builds the report.
func verify(ctx context.Context, open func(name string) (io.ReadCloser, error), f File, unlisted []string, workers int) (Report, error) {
	if len(f.Entries) == 0 {
		return Report{}, outcome.UsageErrorf("checksum verify: the checksum file lists no files")
	}
	results := hashAll(ctx, len(f.Entries), workers, func(i int) (io.ReadCloser, error) { return open(f.Entries[i].Name) })
	if err := ctx.Err(); err != nil {
		return Report{}, fmt.Errorf("checksum verify: %w", err)
	}
	var rep Report
	for i, e := range f.Entries {
		r := results[i]
		res := Result{Name: e.Name, Expected: e.SHA256, Actual: r.digest}
		switch {
		case errors.Is(r.err, fs.ErrNotExist):
			res.Status, res.Detail = StatusMissing, "listed in the checksum file but missing"
		case r.err != nil:
			res.Status, res.Detail = StatusError, "cannot read: "+r.err.Error()
		case !strings.EqualFold(r.digest, e.SHA256):
			res.Status, res.Detail = StatusMismatch, fmt.Sprintf("SHA-256 mismatch: checksum file has %s, content has %s", e.SHA256, r.digest)
		default:
			res.Status = StatusOK
		}
		rep.Results = append(rep.Results, res)
	}
	for _, n := range unlisted {
		rep.Results = append(rep.Results, Result{Name: n, Status: StatusUnlisted, Detail: "present but not listed in the checksum file"})
	}
	slices.SortFunc(rep.Results, func(a, b Result) int { return strings.Compare(a.Name, b.Name) })
	return rep, rep.Err()
}
