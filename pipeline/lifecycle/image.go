package lifecycle

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// HotfixCmdline is what the node-image hotfix adds to every profile's kernel command line.
const HotfixCmdline = "mero.console=locked"

// HotfixImageDir is the hotfix's node image in the repository (the simulator's description),
// HotfixImage of examples/node-image; the CLI and the Dagger lifecycle release it as X.Y.1.
const HotfixImageDir = "examples/node-image-hotfix"

// HotfixImage writes the node image of the hotfix into dst: a copy of the simulator image in
// src (a directory with PROFILE.json manifests, tdxsim) whose kernel command lines gain
// HotfixCmdline, so RTMR2 of every profile changes, as a real kernel-parameter fix would.
func HotfixImage(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("hotfix node image: %w", err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("hotfix node image: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !keep(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return fmt.Errorf("hotfix node image: %w", err)
		}
		if p, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			if _, err := release.ParseProfile(p); err == nil {
				if data, err = patchManifest(data); err != nil {
					return fmt.Errorf("hotfix node image %s: %w", e.Name(), err)
				}
			}
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			return fmt.Errorf("hotfix node image: %w", err)
		}
	}
	for _, p := range release.Profiles() {
		if _, err := tdxsim.LoadImage(dst, string(p)); err != nil {
			return fmt.Errorf("hotfix node image: %w", err)
		}
	}
	return nil
}

// patchManifest appends HotfixCmdline to a manifest's cmdline (once).
func patchManifest(data []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	cmdline, _ := m["cmdline"].(string)
	if !strings.Contains(cmdline, HotfixCmdline) {
		m["cmdline"] = strings.TrimSpace(cmdline + " " + HotfixCmdline)
	}
	if name, ok := m["name"].(string); ok && !strings.HasSuffix(name, "-hotfix") {
		m["name"] = name + "-hotfix"
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// keep says whether a file of the example image belongs to the hotfix image: the manifests and
// the artefacts they name, not the example's generator or README.
func keep(name string) bool {
	switch filepath.Ext(name) {
	case ".json", ".bin", ".img":
		return true
	}
	return name == "vmlinuz"
}
