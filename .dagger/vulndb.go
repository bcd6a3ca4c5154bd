package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"dagger/mero-release/internal/dagger"
)

// vulndbPath is where VulndbUpdate installs the database in its container.
const vulndbPath = "/vulndb"

// listingHost is the name a listing service is bound under.
const listingHost = "vulndb-listing"

// VulndbUpdate downloads the newest grype vulnerability database with `mero-release vulndb
// update` (checksum checked) and returns its directory, for the release functions' --vuln-db.
// The listing is grype's public one unless listing-url or listing is given: a listing service
// such as a static web server hosting what `mero-release vulndb mirror` wrote, for builders
// without internet (e.g. --listing tcp://localhost:8000). The UTC day is an input of the
// download, so an engine downloads at most once a day and a later day downloads again.
func (m *MeroRelease) VulndbUpdate(ctx context.Context,
	// grype's database listing: a latest.json URL or a base URL holding v6/latest.json.
	// +optional
	listingUrl string,
	// A service serving a listing at its root (v6/latest.json and the archive it names).
	// +optional
	listing *dagger.Service,
) (*dagger.Directory, error) {
	ctr := m.Container().WithEnvVariable("MERO_VULNDB_DAY", time.Now().UTC().Format(time.DateOnly))
	if listing != nil {
		if listingUrl != "" {
			return nil, errors.New("vulndb-update: give listing-url or listing, not both")
		}
		ports, err := listing.Ports(ctx)
		if err != nil {
			return nil, fmt.Errorf("vulndb-update: listing service: %w", err)
		}
		if len(ports) == 0 {
			return nil, errors.New("vulndb-update: the listing service exposes no port")
		}
		port, err := ports[0].Port(ctx)
		if err != nil {
			return nil, fmt.Errorf("vulndb-update: listing service: %w", err)
		}
		ctr = ctr.WithServiceBinding(listingHost, listing)
		listingUrl = fmt.Sprintf("http://%s:%d", listingHost, port)
	}
	args := append([]string{"vulndb", "update", "--dir", vulndbPath}, flag("listing-url", listingUrl)...)
	ran := exec(ctr, args...)
	if _, err := result(ctx, ran, args); err != nil {
		return nil, err
	}
	return ran.Directory(vulndbPath), nil
}

// vulnDatabase is the database a release scans with: the given directory, or with update a
// freshly downloaded one (VulndbUpdate), never both.
func (m *MeroRelease) vulnDatabase(ctx context.Context, given *dagger.Directory, update bool, listingURL string, listing *dagger.Service) (*dagger.Directory, error) {
	switch {
	case !update && (listingURL != "" || listing != nil):
		return nil, errors.New("vuln-db-listing-url and vuln-db-listing go with vuln-db-update")
	case !update:
		return given, nil
	case given != nil:
		return nil, errors.New("give vuln-db or vuln-db-update, not both")
	}
	return m.VulndbUpdate(ctx, listingURL, listing)
}
