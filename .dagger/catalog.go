package main

import (
	"context"

	"dagger/mero-release/internal/dagger"
)

// catalogFile is the catalog's path in the repository.
const catalogFile = "compatibility-catalog.json"

// CatalogValidate strictly validates a compatibility catalog (SPEC §5).
func (m *MeroRelease) CatalogValidate(
	ctx context.Context,
	// Catalog to validate (default: the source's compatibility-catalog.json).
	// +optional
	catalog *dagger.File,
) (string, error) {
	ctr, p := withFile(m.Container(), catalogFile, catalog)
	if p == "" {
		p = catalogFile
	}
	return m.run(ctx, ctr, "catalog", "validate", p)
}

// CatalogAdd adds a tested KMS ↔ node pair and returns the rewritten catalog.
//
// The file is written deterministically (sorted, stable formatting) so diffs stay minimal.
func (m *MeroRelease) CatalogAdd(
	ctx context.Context,
	// KMS version, e.g. 1.3.0.
	kms string,
	// Node-image version, e.g. 1.3.0.
	node string,
	// Profiles the pair was tested with (default: every profile, as the CLI lists them).
	// +optional
	profiles []string,
	// Free-text note for the entry.
	// +optional
	notes string,
	// Catalog to update (default: the source's compatibility-catalog.json).
	// +optional
	catalog *dagger.File,
) (*dagger.File, error) {
	if catalog == nil {
		catalog = m.Source.File(catalogFile)
	}
	if len(profiles) == 0 {
		rules, err := m.rules(ctx)
		if err != nil {
			return nil, err
		}
		profiles = rules.Profiles
	}
	const out = "/work/" + catalogFile
	ctr := m.Container().WithFile(out, catalog)
	args := []string{"catalog", "add", "--kms", kms, "--node", node, "--profiles", csv(profiles), "--file", out}
	args = append(args, flag("notes", notes)...)
	return m.runFile(ctx, ctr, out, args...)
}

// CatalogQuery lists the compatible counterparts of a KMS or node-image version (JSON).
func (m *MeroRelease) CatalogQuery(
	ctx context.Context,
	// KMS version whose compatible node images to list.
	// +optional
	kms string,
	// Node-image version whose compatible KMS versions to list.
	// +optional
	node string,
	// Catalog to query (default: the source's compatibility-catalog.json).
	// +optional
	catalog *dagger.File,
) (string, error) {
	ctr, p := withFile(m.Container(), catalogFile, catalog)
	if p == "" {
		p = catalogFile
	}
	args := []string{"catalog", "query", "--file", p, "--json"}
	args = append(args, flag("kms", kms)...)
	args = append(args, flag("node", node)...)
	return m.run(ctx, ctr, args...)
}
