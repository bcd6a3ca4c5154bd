// Package vulntest serves grype vulnerability databases on 127.0.0.1 the way grype's
// distribution does — a v6/latest.json listing and the tar.zst archive it names, written by
// vuln.Mirror with grype's own listing types — so that `vulndb update` is tested through grype's
// distribution client and installer.
package vulntest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	v6 "github.com/anchore/grype/grype/db/v6"
	v6dist "github.com/anchore/grype/grype/db/v6/distribution"

	"github.com/calimero-network/mero-release/pipeline/vuln"
)

// Listing is a database listing served on loopback.
type Listing struct {
	srv  *httptest.Server
	root string // served files: v6/latest.json and the archives

	mu       sync.Mutex
	status   int // when not 0, every request is answered with it
	requests int
	last     time.Time
}

// New starts an empty listing (every request 404 until Publish); it stops with the test.
func New(tb testing.TB) *Listing {
	tb.Helper()
	l := &Listing{root: tb.TempDir()}
	files := http.FileServer(http.Dir(l.root))
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.requests++
		status := l.status
		l.mu.Unlock()
		if status != 0 {
			http.Error(w, http.StatusText(status), status)
			return
		}
		http.StripPrefix("/databases", files).ServeHTTP(w, r)
	}))
	tb.Cleanup(l.srv.Close)
	return l
}

// URL is the listing's base URL (grype reads URL/v6/latest.json).
func (l *Listing) URL() string { return l.srv.URL + "/databases" }

// Requests is how many requests the listing has answered.
func (l *Listing) Requests() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests
}

// Fail answers every request with status (0: serve again).
func (l *Listing) Fail(status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status = status
}

// Publish builds a database of advisories with vuln.BuildDB, archives it and lists it as the
// newest; it returns the database's build time (grype's, whole seconds, later than any
// published before).
func (l *Listing) Publish(tb testing.TB, advisories []vuln.Advisory) time.Time {
	tb.Helper()
	build := filepath.Join(tb.TempDir(), "db")
	var desc *v6.Description
	for range 3 {
		if err := vuln.BuildDB(context.Background(), build, advisories); err != nil {
			tb.Fatal(err)
		}
		var err error
		if desc, err = v6.ReadDescription(filepath.Join(build, v6.VulnerabilityDBFileName)); err != nil {
			tb.Fatal(err)
		}
		if desc.Built.After(l.last) {
			break
		}
		time.Sleep(time.Until(l.last.Add(1100 * time.Millisecond)))
	}
	if !desc.Built.After(l.last) {
		tb.Fatalf("database built %s, not after the last published %s", desc.Built, l.last)
	}
	l.last = desc.Built.Time
	if _, err := vuln.Mirror(context.Background(), build, l.root); err != nil {
		tb.Fatal(err)
	}
	return desc.Built.Time
}

// CorruptArchive changes a byte of the newest archive, so it no longer has the listed checksum.
func (l *Listing) CorruptArchive(tb testing.TB) {
	tb.Helper()
	f, err := os.Open(filepath.Join(l.root, "v6", v6dist.LatestFileName))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	doc, err := v6dist.NewLatestFromReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(l.root, "v6", doc.Path)
	data, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
}
