package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// Quoter produces the KMS's own TDX quotes, with the given report data.
type Quoter interface {
	Quote(reportData [64]byte) ([]byte, error)
}

// BootSimulatedDstack boots the pinned dstack OS (dstack.PinnedOSImage: the MRTD and RTMR0–2
// every KMS release publishes) on the TDX simulator and extends RTMR3 with the dstack boot
// events of the KMS's deployment for the compose hash (hex SHA-256 of the normalised
// app-compose): measure.DstackBoot{}.Events, the very events the KMS measurement replays, so
// that the simulated KMS's registers are the published ones. The VM is the KMS's Quoter in
// local mode; Shutdown it when the KMS stops.
func BootSimulatedDstack(ctx context.Context, auth *tdxsim.Authority, composeHashHex string) (*tdxsim.VM, error) {
	b, err := hex.DecodeString(composeHashHex)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("simulated dstack: compose hash %q is not 64 hex characters (SHA-256)", composeHashHex)
	}
	events, err := measure.DstackBoot{}.Events([32]byte(b))
	if err != nil {
		return nil, fmt.Errorf("simulated dstack: %w", err)
	}
	osImg := dstack.PinnedOSImage()
	m, err := osImg.Measurements()
	if err != nil {
		return nil, fmt.Errorf("simulated dstack: %w", err)
	}
	vm, err := auth.BootRegisters(ctx, osImg.Name, "kms", m)
	if err != nil {
		return nil, fmt.Errorf("simulated dstack: %w", err)
	}
	for _, ev := range events {
		if err := vm.ExtendRTMR3(ev); err != nil {
			vm.Shutdown()
			return nil, fmt.Errorf("simulated dstack: %w", err)
		}
	}
	return vm, nil
}

// DstackQuoter gets the KMS's quotes from the dstack guest agent of the CVM it runs in
// (GetQuote over the agent's unix socket): the quote dstack's own tooling verifies, whose
// RTMR3 is the app's event log.
type DstackQuoter struct {
	Client *dstack.GuestClient
}

// Quote implements Quoter.
func (d DstackQuoter) Quote(reportData [64]byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := d.Client.GetQuote(ctx, reportData[:])
	if err != nil {
		return nil, err
	}
	return q.Quote, nil
}

// ConfigFSQuoter gets quotes from the Linux configfs-tsm interface of a TDX guest
// (/sys/kernel/config/tsm/report): it creates a report entry, writes the report data to
// inblob and reads the quote from outblob, checking the generation counter so that a
// concurrent writer cannot hand it someone else's quote.
type ConfigFSQuoter struct {
	// Dir is the tsm report directory; empty means /sys/kernel/config/tsm/report.
	Dir string
}

// DefaultConfigFSDir is where Linux mounts the configfs-tsm report interface.
const DefaultConfigFSDir = "/sys/kernel/config/tsm/report"

// Quote implements Quoter.
func (c ConfigFSQuoter) Quote(reportData [64]byte) ([]byte, error) {
	dir := c.Dir
	if dir == "" {
		dir = DefaultConfigFSDir
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("configfs-tsm: %w (not a TDX guest with configfs-tsm?)", err)
	}
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, fmt.Errorf("configfs-tsm: %w", err)
	}
	entry := filepath.Join(dir, "mero-kms-"+hex.EncodeToString(suffix[:]))
	if err := os.Mkdir(entry, 0o700); err != nil {
		return nil, fmt.Errorf("configfs-tsm: create report entry: %w", err)
	}
	defer os.Remove(entry)
	if p, err := os.ReadFile(filepath.Join(entry, "provider")); err == nil && strings.TrimSpace(string(p)) != "tdx_guest" {
		return nil, fmt.Errorf("configfs-tsm: provider is %q, want tdx_guest", strings.TrimSpace(string(p)))
	}
	before, err := readGeneration(entry)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(entry, "inblob"), reportData[:], 0o600); err != nil {
		return nil, fmt.Errorf("configfs-tsm: write inblob: %w", err)
	}
	quote, err := os.ReadFile(filepath.Join(entry, "outblob"))
	if err != nil {
		return nil, fmt.Errorf("configfs-tsm: read outblob: %w", err)
	}
	after, err := readGeneration(entry)
	if err != nil {
		return nil, err
	}
	if after != before+1 {
		return nil, fmt.Errorf("configfs-tsm: generation went from %d to %d: another writer used the entry", before, after)
	}
	if len(quote) == 0 {
		return nil, errors.New("configfs-tsm: empty quote")
	}
	return quote, nil
}

func readGeneration(entry string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(entry, "generation"))
	if err != nil {
		return 0, fmt.Errorf("configfs-tsm: read generation: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("configfs-tsm: generation %q: %w", strings.TrimSpace(string(b)), err)
	}
	return n, nil
}
