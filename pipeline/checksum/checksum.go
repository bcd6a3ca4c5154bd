// Package checksum writes, parses and verifies checksums.sha256, the SHA-256 list of every
// release asset (SPEC §5). The file format is exactly what GNU `sha256sum` prints, so
// `sha256sum -c checksums.sha256` verifies a release without this tool.
//
// Hashing is streaming: every byte of a file is read once, through a buffer reused by the
// worker that hashes it, and files are hashed concurrently by a bounded pool of workers
// (GOMAXPROCS by default).
package checksum

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/calimero-network/mero-release/pipeline/internal/ctxio"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// bufferSize is the read buffer of one hashing worker.
const bufferSize = 256 << 10

// maxLineLength bounds one line of a checksum file when parsing (a name is at most a few
// hundred bytes; this only stops a runaway input).
const maxLineLength = 64 << 10

// Entry is one line of a checksum file: a file name and the lowercase hex SHA-256 of its content.
type Entry struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// File is the content of a checksum file: its entries, sorted by name, names unique.
type File struct {
	Entries []Entry `json:"entries"`
}

// Names returns the names of the entries, in order.
func (f File) Names() []string {
	names := make([]string, len(f.Entries))
	for i, e := range f.Entries {
		names[i] = e.Name
	}
	return names
}

// Lookup returns the digest recorded for name.
func (f File) Lookup(name string) (string, bool) {
	i, ok := slices.BinarySearchFunc(f.Entries, name, func(e Entry, n string) int { return strings.Compare(e.Name, n) })
	if !ok {
		return "", false
	}
	return f.Entries[i].SHA256, true
}

// Marshal renders the file in `sha256sum` format: "<hex>  <name>\n" per entry, sorted by name.
func (f File) Marshal() []byte {
	entries := slices.Clone(f.Entries)
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	var buf bytes.Buffer
	for _, e := range entries {
		buf.WriteString(strings.ToLower(e.SHA256))
		buf.WriteString("  ")
		buf.WriteString(e.Name)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// ValidateName reports whether name can be listed in a checksum file: a relative, clean,
// slash-separated path (fs.ValidPath) without characters that sha256sum would escape.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("empty file name")
	case strings.ContainsAny(name, "\n\r\\"):
		return fmt.Errorf("file name %q contains a newline, carriage return or backslash", name)
	case !fs.ValidPath(name) || name == ".":
		return fmt.Errorf("file name %q is not a clean relative path", name)
	}
	return nil
}

// Parse reads a checksum file in `sha256sum` format. It is strict: every line must be
// "<64 hex digits><space><space or '*'><name>", names must be valid and unique, and the
// file must list at least one entry. A checksum file is outside input (a release's asset):
// errors are verification errors (exit 10) naming the line, never usage errors.
func Parse(r io.Reader) (File, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLength)
	sc.Split(splitLF)
	var f File
	seen := map[string]int{}
	line := 0
	for sc.Scan() {
		line++
		e, err := parseLine(sc.Text())
		if err != nil {
			return File{}, outcome.VerificationErrorf("checksum file line %d: %v", line, err)
		}
		if prev, dup := seen[e.Name]; dup {
			return File{}, outcome.VerificationErrorf("checksum file line %d: %q is already listed on line %d", line, e.Name, prev)
		}
		seen[e.Name] = line
		f.Entries = append(f.Entries, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return File{}, outcome.VerificationErrorf("checksum file line %d: longer than %d bytes", line+1, maxLineLength)
		}
		return File{}, fmt.Errorf("read checksum file: %w", err)
	}
	if len(f.Entries) == 0 {
		return File{}, outcome.VerificationErrorf("checksum file lists no files")
	}
	slices.SortFunc(f.Entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return f, nil
}

// splitLF splits on '\n' only, unlike bufio.ScanLines which silently drops a '\r'.
func splitLF(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// parseLine parses one "<hex>  <name>" or "<hex> *<name>" line.
func parseLine(s string) (Entry, error) {
	if s == "" {
		return Entry{}, errors.New("empty line")
	}
	if strings.HasSuffix(s, "\r") {
		return Entry{}, errors.New("carriage return at end of line (CRLF line endings are not allowed)")
	}
	if strings.HasPrefix(s, "\\") {
		return Entry{}, errors.New("escaped file names (leading backslash) are not supported")
	}
	if strings.HasPrefix(s, "SHA256 (") {
		return Entry{}, errors.New("BSD-style line; expected \"<hex>  <name>\" (sha256sum format)")
	}
	if len(s) < 64+2+1 {
		return Entry{}, fmt.Errorf("expected \"<64 hex digits>  <name>\", got %q", truncate(s))
	}
	digest := s[:64]
	if _, err := hex.DecodeString(digest); err != nil {
		return Entry{}, fmt.Errorf("digest %q is not 64 hex digits", truncate(digest))
	}
	if s[64] != ' ' || (s[65] != ' ' && s[65] != '*') {
		return Entry{}, errors.New("digest must be followed by two spaces (text mode) or a space and '*' (binary mode)")
	}
	name := s[66:]
	if err := ValidateName(name); err != nil {
		return Entry{}, err
	}
	return Entry{Name: name, SHA256: strings.ToLower(digest)}, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Compute hashes the named files under dir and returns their checksum file. Names must be
// valid (ValidateName) and unique; a missing file is a missing-asset error (exit 11).
func Compute(ctx context.Context, dir string, names []string) (File, error) {
	return ComputeFS(ctx, os.DirFS(dir), names)
}

// ComputeFS is Compute over any file system.
func ComputeFS(ctx context.Context, fsys fs.FS, names []string) (File, error) {
	if len(names) == 0 {
		return File{}, outcome.UsageErrorf("no files to checksum")
	}
	seen := map[string]bool{}
	for _, n := range names {
		if err := ValidateName(n); err != nil {
			return File{}, outcome.UsageErrorf("checksum: %v", err)
		}
		if seen[n] {
			return File{}, outcome.UsageErrorf("checksum: %q given twice", n)
		}
		seen[n] = true
	}
	results := hashAll(ctx, len(names), 0, func(i int) (io.ReadCloser, error) { return fsys.Open(names[i]) })
	var f File
	var errs []error
	for i, r := range results {
		switch {
		case r.err == nil:
			f.Entries = append(f.Entries, Entry{Name: names[i], SHA256: r.digest})
		case errors.Is(r.err, fs.ErrNotExist):
			errs = append(errs, outcome.MissingAssetErrorf("checksum: %s: file not found", names[i]))
		default:
			errs = append(errs, fmt.Errorf("checksum: %s: %w", names[i], r.err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return File{}, err
	}
	slices.SortFunc(f.Entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return f, nil
}

// hashResult is the outcome of hashing one file.
type hashResult struct {
	digest string
	err    error
}

// hashAll hashes n files opened by open, with at most workers goroutines (GOMAXPROCS when
// workers <= 0), each reusing one read buffer. The i-th result belongs to the i-th file.
func hashAll(ctx context.Context, n, workers int, open func(i int) (io.ReadCloser, error)) []hashResult {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n)
	results := make([]hashResult, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, bufferSize)
			h := sha256.New()
			for i := range jobs {
				results[i] = hashOne(ctx, h, buf, func() (io.ReadCloser, error) { return open(i) })
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return results
}

// hashOne opens and hashes one file with the worker's hash and buffer.
func hashOne(ctx context.Context, h hash.Hash, buf []byte, open func() (io.ReadCloser, error)) hashResult {
	if err := ctx.Err(); err != nil {
		return hashResult{err: err}
	}
	rc, err := open()
	if err != nil {
		return hashResult{err: err}
	}
	defer rc.Close()
	if st, ok := rc.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if info, err := st.Stat(); err == nil && info.IsDir() {
			return hashResult{err: errors.New("is a directory")}
		}
	}
	h.Reset()
	// ctxio.Reader hides any WriterTo of the file so that io.CopyBuffer really uses buf.
	if _, err := io.CopyBuffer(h, ctxio.Reader(ctx, rc), buf); err != nil {
		return hashResult{err: fmt.Errorf("read: %w", err)}
	}
	return hashResult{digest: hex.EncodeToString(h.Sum(nil))}
}
