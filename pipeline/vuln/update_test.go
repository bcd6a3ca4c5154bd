package vuln_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/vuln"
	"github.com/calimero-network/mero-release/pipeline/vuln/vulntest"
)

// TestUpdateFromListing runs `vulndb update` through grype's distribution client and installer
// against a listing on loopback: the first update installs the listed database, which then
// scans; a second finds nothing newer; a newer listing replaces it; a corrupted archive or a
// failing listing is an error that leaves the installed database as it was.
func TestUpdateFromListing(t *testing.T) {
	ctx := context.Background()
	listing := vulntest.New(t)
	first := listing.Publish(t, advisories())
	dir := filepath.Join(t.TempDir(), "vulndb")
	opts := vuln.UpdateOptions{ListingURL: listing.URL()}

	updated, info, err := vuln.Update(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !updated || !info.Built.Equal(first) || !strings.HasPrefix(info.Schema, "v6.") {
		t.Fatalf("first update: updated %v, %+v; want the database built %s", updated, info, first)
	}
	db, err := vuln.OpenDB(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := byID(scan(t, db, "", vuln.High))["GHSA-test-crit-0001"]; !ok || !f.Blocking {
		t.Fatalf("the installed database does not find the listed advisory: %+v", f)
	}
	db.Close()

	if updated, info, err = vuln.Update(ctx, dir, opts); err != nil || updated || !info.Built.Equal(first) {
		t.Fatalf("update with nothing newer: updated %v, %+v, %v", updated, info, err)
	}

	second := listing.Publish(t, advisories()[:1])
	if updated, info, err = vuln.Update(ctx, dir, opts); err != nil || !updated || !info.Built.Equal(second) {
		t.Fatalf("update to a newer database: updated %v, %+v, %v; want built %s", updated, info, err, second)
	}

	// A newer archive whose bytes are not the listed checksum: refused, the installed kept.
	listing.Publish(t, advisories())
	listing.CorruptArchive(t)
	if _, _, err := vuln.Update(ctx, dir, opts); err == nil || !strings.Contains(err.Error(), "Checksums did not match") {
		t.Fatalf("corrupted archive: %v, want a checksum error", err)
	}
	assertInstalled(t, dir, second)

	// A listing that fails: an error naming the listing, the installed database kept.
	listing.Fail(http.StatusInternalServerError)
	_, _, err = vuln.Update(ctx, dir, opts)
	if err == nil || !strings.Contains(err.Error(), "listing") {
		t.Fatalf("failing listing: %v", err)
	}
	assertInstalled(t, dir, second)
}

func assertInstalled(t *testing.T, dir string, built time.Time) {
	t.Helper()
	db, err := vuln.OpenDB(context.Background(), dir, "")
	if err != nil {
		t.Fatalf("installed database: %v", err)
	}
	defer db.Close()
	if !db.Info.Built.Equal(built) {
		t.Fatalf("installed database built %s, want %s (kept)", db.Info.Built, built)
	}
}

func TestUpdateRefusesABadListingURL(t *testing.T) {
	for _, u := range []string{"ftp://127.0.0.1/x", "not a url", "http://"} {
		_, _, err := vuln.Update(context.Background(), t.TempDir(), vuln.UpdateOptions{ListingURL: u})
		if outcome.Code(err) != outcome.Usage {
			t.Errorf("%q: %v (code %d), want a usage error", u, err, outcome.Code(err))
		}
	}
}
