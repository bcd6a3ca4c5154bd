package vuln

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	v6 "github.com/anchore/grype/grype/db/v6"
	v6dist "github.com/anchore/grype/grype/db/v6/distribution"
	v6inst "github.com/anchore/grype/grype/db/v6/installation"
	"github.com/anchore/grype/grype/vulnerability"
	"github.com/klauspost/compress/zstd"

	"github.com/calimero-network/mero-release/pipeline/atomicfile"
	"github.com/calimero-network/mero-release/pipeline/internal/ctxio"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// LocalPrefix marks a DB source that is an advisory list (JSON, see Advisories) from which a
// grype database is built for the run, instead of a grype database directory.
const LocalPrefix = "local:"

// DBInfo describes the vulnerability database a scan used.
type DBInfo struct {
	// Source is what was configured: a grype DB directory, or local:FILE (an advisory list).
	Source string `json:"source"`
	// Built is the DB's build time (grype's DB metadata).
	Built time.Time `json:"built"`
	// Schema is the grype DB schema version, e.g. v6.1.3.
	Schema string `json:"schema"`
	// Advisories is the number of advisories of a local advisory list (0 for a grype DB).
	Advisories int `json:"advisories,omitempty"`
}

// DB is an open grype vulnerability database.
type DB struct {
	// Info describes it.
	Info     DBInfo
	reader   v6.Reader
	provider vulnerability.Provider
}

// Close releases the database.
func (d *DB) Close() error {
	if d == nil || d.provider == nil {
		return nil
	}
	return d.provider.Close()
}

// dbFile finds vulnerability.db in dir: directly in it (a DB directory) or in dir/6/ (the
// root directory grype's installer, and `mero-release vulndb update`, write).
func dbFile(dir string) (string, error) {
	for _, p := range []string{filepath.Join(dir, v6.VulnerabilityDBFileName), filepath.Join(dir, fmt.Sprint(v6.ModelVersion), v6.VulnerabilityDBFileName)} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return filepath.Dir(p), nil
		}
	}
	return "", outcome.UsageErrorf("vulnerability database: no %s in %s or %s/%d (run `mero-release vulndb update --dir %s`)",
		v6.VulnerabilityDBFileName, dir, dir, v6.ModelVersion, dir)
}

// OpenDB opens the database of source: a grype v6 DB directory, or local:FILE, an advisory list
// built into a database under workDir first (BuildDB). Nothing is fetched.
func OpenDB(ctx context.Context, source, workDir string) (*DB, error) {
	if source == "" {
		return nil, outcome.UsageErrorf("vulnerability database: none configured")
	}
	dir := source
	advisories := 0
	if file, ok := strings.CutPrefix(source, LocalPrefix); ok {
		list, err := LoadAdvisories(file)
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(workDir, "vulndb")
		if err := BuildDB(ctx, dir, list); err != nil {
			return nil, err
		}
		advisories = len(list)
	}
	found, err := dbFile(dir)
	if err != nil {
		return nil, err
	}
	rdr, err := v6.NewReader(v6.Config{DBDirPath: found})
	if err != nil {
		return nil, fmt.Errorf("vulnerability database %s: %w", found, err)
	}
	meta, err := rdr.GetDBMetadata()
	if err != nil || meta == nil || meta.BuildTimestamp == nil {
		rdr.Close()
		return nil, outcome.UsageErrorf("vulnerability database %s: no build metadata (not a grype v%d database?): %v", found, v6.ModelVersion, err)
	}
	if meta.Model != v6.ModelVersion {
		rdr.Close()
		return nil, outcome.UsageErrorf("vulnerability database %s: schema v%d, this build reads v%d", found, meta.Model, v6.ModelVersion)
	}
	return &DB{
		Info: DBInfo{
			Source: source, Built: meta.BuildTimestamp.UTC(), Advisories: advisories,
			Schema: fmt.Sprintf("v%d.%d.%d", meta.Model, meta.Revision, meta.Addition),
		},
		reader:   rdr,
		provider: v6.NewVulnerabilityProvider(rdr),
	}, nil
}

// Advisory is one vulnerability record of a local advisory list, the input of BuildDB.
type Advisory struct {
	// ID is the vulnerability id, e.g. GHSA-v778-237x-gjrc or CVE-2024-45337.
	ID string `json:"id"`
	// Aliases are other ids of the same vulnerability (e.g. its CVE).
	Aliases []string `json:"aliases,omitempty"`
	// Ecosystem is the syft package type, e.g. go-module, deb, apk, npm.
	Ecosystem string `json:"ecosystem"`
	// Package is the package name in that ecosystem, e.g. golang.org/x/crypto.
	Package string `json:"package"`
	// Affected is the version constraint of affected versions, e.g. "< 0.31.0".
	Affected string `json:"affected"`
	// VersionFormat is grype's version format of Affected (default by ecosystem: go for go-module, else semver).
	VersionFormat string `json:"version_format,omitempty"`
	// Fixed is the version that fixes it; empty means not fixed.
	Fixed string `json:"fixed,omitempty"`
	// Severity is critical, high, medium, low or negligible.
	Severity string `json:"severity"`
	// Description and URL describe it.
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"`
}

// advisoryList is the JSON file of a local advisory list.
type advisoryList struct {
	Advisories []Advisory `json:"advisories"`
}

// LoadAdvisories reads a local advisory list: {"advisories": [Advisory…]}.
func LoadAdvisories(path string) ([]Advisory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, outcome.UsageErrorf("advisory list: %v", err)
	}
	var list advisoryList
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return nil, outcome.UsageErrorf("advisory list %s: %v", path, err)
	}
	for i, a := range list.Advisories {
		if err := a.validate(); err != nil {
			return nil, outcome.UsageErrorf("advisory list %s: entry %d: %v", path, i+1, err)
		}
	}
	return list.Advisories, nil
}

func (a Advisory) validate() error {
	switch {
	case a.ID == "":
		return errors.New("no id")
	case a.Ecosystem == "" || a.Package == "":
		return fmt.Errorf("%s: ecosystem and package are required", a.ID)
	case a.Affected == "":
		return fmt.Errorf("%s: no affected version constraint", a.ID)
	}
	if _, err := ParseSeverity(a.Severity); err != nil {
		return fmt.Errorf("%s: %w", a.ID, err)
	}
	return nil
}

// BuildDB writes a grype v6 vulnerability database of the advisories into dir (replacing
// one there), with grype's own DB writer: the same schema, tables and matching the DB grype
// distributes. Tests build their fixtures with it; a local advisory list (local:FILE) too.
func BuildDB(ctx context.Context, dir string, advisories []Advisory) (err error) {
	for _, a := range advisories {
		if err := a.validate(); err != nil {
			return outcome.UsageErrorf("advisory: %v", err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("vulnerability database %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("vulnerability database %s: %w", dir, err)
	}
	w, err := v6.NewWriter(v6.Config{DBDirPath: dir, CacheSizeKiB: 8 * 1024})
	if err != nil {
		return fmt.Errorf("vulnerability database %s: %w", dir, err)
	}
	defer func() {
		if cerr := w.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("vulnerability database %s: %w", dir, cerr)
		}
	}()
	now := time.Now().UTC()
	prov := &v6.Provider{ID: "mero-release", Version: "1", Processor: "mero-release vuln.BuildDB", DateCaptured: &now}
	for _, a := range advisories {
		if err := ctx.Err(); err != nil {
			return err
		}
		sev, _ := ParseSeverity(a.Severity)
		blob := &v6.VulnerabilityBlob{ID: a.ID, Aliases: a.Aliases, Description: a.Description,
			Severities: []v6.Severity{{Scheme: v6.SeveritySchemeCHMLN, Value: sev.String(), Rank: 1}}}
		if a.URL != "" {
			blob.References = []v6.Reference{{URL: a.URL}}
		}
		vh := &v6.VulnerabilityHandle{Name: a.ID, Status: v6.VulnerabilityActive, ProviderID: prov.ID, Provider: prov, BlobValue: blob}
		if err := w.AddVulnerabilities(vh); err != nil {
			return fmt.Errorf("vulnerability database: add %s: %w", a.ID, err)
		}
		format := a.VersionFormat
		if format == "" {
			format = "semver"
			if a.Ecosystem == "go-module" {
				format = "go"
			}
		}
		fix := &v6.Fix{State: v6.NotFixedStatus}
		if a.Fixed != "" {
			fix = &v6.Fix{State: v6.FixedStatus, Version: a.Fixed}
		}
		var cves []string
		for _, id := range append([]string{a.ID}, a.Aliases...) {
			if strings.HasPrefix(strings.ToUpper(id), "CVE-") {
				cves = append(cves, id)
			}
		}
		ph := &v6.AffectedPackageHandle{
			Vulnerability: vh,
			Package:       &v6.Package{Ecosystem: a.Ecosystem, Name: a.Package},
			BlobValue: &v6.PackageBlob{CVEs: cves, Ranges: []v6.Range{{
				Version: v6.Version{Type: format, Constraint: a.Affected}, Fix: fix,
			}}},
		}
		if err := w.AddAffectedPackages(ph); err != nil {
			return fmt.Errorf("vulnerability database: add %s %s: %w", a.ID, a.Package, err)
		}
	}
	if err := w.SetDBMetadata(); err != nil {
		return fmt.Errorf("vulnerability database: %w", err)
	}
	return nil
}

// UpdateOptions says where `vulndb update` looks for databases.
type UpdateOptions struct {
	// ListingURL is grype's database listing: a latest.json, or a base URL under which
	// v6/latest.json is read (grype's distribution layout; archives are resolved next to the
	// listing). Empty: grype's public listing.
	ListingURL string
	// CACert is a PEM file of extra CAs for the listing's TLS server (a mirror inside a
	// private network). Empty: the system's roots.
	CACert string
}

// Update downloads the newest grype vulnerability database into dir (DIR/6/vulnerability.db)
// with grype's distribution client and installer: the listing is read, an archive newer than
// the installed database is downloaded, its checksum checked, and only then does it replace
// the installed one (a failed update leaves the installed database as it was). It is the only
// part of this package that uses the network; no release stage calls it.
func Update(ctx context.Context, dir string, o UpdateOptions) (updated bool, info DBInfo, err error) {
	if dir == "" {
		return false, DBInfo{}, outcome.UsageErrorf("vulndb update: no directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return false, DBInfo{}, fmt.Errorf("vulndb update: %w", err)
	}
	distCfg := v6dist.DefaultConfig()
	distCfg.RequireUpdateCheck = true
	if o.ListingURL != "" {
		u, perr := url.Parse(o.ListingURL)
		if perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return false, DBInfo{}, outcome.UsageErrorf("vulndb update: listing URL %q: want an http(s) URL", o.ListingURL)
		}
		distCfg.LatestURL = o.ListingURL
	}
	distCfg.CACert = o.CACert
	client, err := v6dist.NewClient(distCfg)
	if err != nil {
		return false, DBInfo{}, fmt.Errorf("vulndb update: %w", err)
	}
	instCfg := v6inst.Config{DBRootDir: dir, ValidateChecksum: true, ValidateAge: false}
	cur, err := v6inst.NewCurator(instCfg, client)
	if err != nil {
		return false, DBInfo{}, fmt.Errorf("vulndb update: %w", err)
	}
	if updated, err = cur.Update(); err != nil {
		return false, DBInfo{}, fmt.Errorf("vulndb update: %w", err)
	}
	db, err := OpenDB(ctx, dir, "")
	if err != nil {
		return updated, DBInfo{}, err
	}
	defer db.Close()
	return updated, db.Info, nil
}

// Mirror writes the grype database in dbDir (a database directory or the root `vulndb update`
// writes) as a listing in outDir, the layout grype's distribution serves: outDir/v6/latest.json,
// written with grype's listing types, and the tar.zst archive it names, with its checksum. Any
// static web server hosting outDir is then a listing for `vulndb update --listing-url` (a mirror
// for builders without internet). It returns the listed description.
func Mirror(ctx context.Context, dbDir, outDir string) (DBInfo, error) {
	dir, err := dbFile(dbDir)
	if err != nil {
		return DBInfo{}, err
	}
	dbPath := filepath.Join(dir, v6.VulnerabilityDBFileName)
	desc, err := v6.ReadDescription(dbPath)
	if err != nil {
		return DBInfo{}, fmt.Errorf("vulndb mirror: %s: %w", dbPath, err)
	}
	listingDir := filepath.Join(outDir, fmt.Sprintf("v%d", v6.ModelVersion))
	if err := os.MkdirAll(listingDir, 0o755); err != nil {
		return DBInfo{}, fmt.Errorf("vulndb mirror: %w", err)
	}
	archive := filepath.Join(listingDir, fmt.Sprintf("vulnerability-db_%s_%s.tar.zst", desc.SchemaVersion, desc.Built.UTC().Format("2006-01-02T15-04-05Z")))
	if err := writeArchive(ctx, archive, dbPath); err != nil {
		return DBInfo{}, err
	}
	a, err := v6dist.NewArchive(archive, desc.Built.Time, desc.SchemaVersion.Model, desc.SchemaVersion.Revision, desc.SchemaVersion.Addition)
	if err != nil {
		return DBInfo{}, fmt.Errorf("vulndb mirror: %w", err)
	}
	doc := v6dist.NewLatestDocument(*a)
	if doc == nil {
		return DBInfo{}, fmt.Errorf("vulndb mirror: %s has schema %s, not v%d", dbPath, desc.SchemaVersion, v6.ModelVersion)
	}
	var listing bytes.Buffer
	if err := doc.Write(&listing); err != nil {
		return DBInfo{}, fmt.Errorf("vulndb mirror: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(listingDir, v6dist.LatestFileName), listing.Bytes()); err != nil {
		return DBInfo{}, fmt.Errorf("vulndb mirror: %w", err)
	}
	return DBInfo{Source: outDir, Built: desc.Built.Time, Schema: desc.SchemaVersion.String()}, nil
}

// writeArchive writes a tar.zst holding the database file as vulnerability.db, as grype's
// archives do.
func writeArchive(ctx context.Context, path, dbPath string) (err error) {
	db, err := os.Open(dbPath)
	if err != nil {
		return fmt.Errorf("vulndb mirror: %w", err)
	}
	defer db.Close()
	st, err := db.Stat()
	if err != nil {
		return fmt.Errorf("vulndb mirror: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("vulndb mirror: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("vulndb mirror: %w", cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	zw, err := zstd.NewWriter(f)
	if err != nil {
		return fmt.Errorf("vulndb mirror: %w", err)
	}
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{Name: v6.VulnerabilityDBFileName, Mode: 0o644, Size: st.Size(), ModTime: st.ModTime()}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("vulndb mirror: %w", err)
	}
	if _, err := io.Copy(tw, ctxio.Reader(ctx, db)); err != nil {
		return fmt.Errorf("vulndb mirror: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("vulndb mirror: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("vulndb mirror: %w", err)
	}
	return nil
}
