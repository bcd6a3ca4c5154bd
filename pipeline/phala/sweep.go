package phala

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The environment of the Phala KMS provider (SPEC §2: PHALA_DSTACK_URL is a repository
// variable; the key is a secret).
const (
	// EnvURL is the Phala Cloud API base URL (…/api/v1).
	EnvURL = "PHALA_DSTACK_URL"
	// EnvAPIKey is the Phala Cloud API key (sent as X-API-Key).
	EnvAPIKey = "PHALA_API_KEY"
)

// NamePrefix starts the name of every CVM mero-release deploys, so that Sweep finds only its
// own.
const NamePrefix = "mero-e2e-kms-"

// SweepAge is how old a leftover CVM must be before Sweep deletes it (as the GCP sweeper:
// older than any run).
const SweepAge = 24 * time.Hour

// Sweep deletes the CVMs named NamePrefix… created more than olderThan before now, leftovers
// of runs that could not clean up (a killed job). It returns the app ids deleted; every
// deletion is tried, and the errors are joined.
func Sweep(ctx context.Context, c *Client, olderThan time.Duration, now time.Time) ([]string, error) {
	cvms, err := c.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("phala sweep: %w", err)
	}
	var deleted []string
	var errs []error
	for _, cvm := range cvms {
		if !strings.HasPrefix(cvm.Name, NamePrefix) || cvm.CreatedAt.IsZero() || now.Sub(cvm.CreatedAt) < olderThan {
			continue
		}
		if err := c.Delete(ctx, cvm.AppID); err != nil {
			errs = append(errs, fmt.Errorf("phala sweep %s (%s): %w", cvm.Name, cvm.AppID, err))
			continue
		}
		deleted = append(deleted, cvm.AppID)
	}
	return deleted, errors.Join(errs...)
}
