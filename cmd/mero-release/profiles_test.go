package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/release"
)

func TestProfilesCommand(t *testing.T) {
	code, stdout, stderr := e2eCLI(t, nil, "--json", "profiles")
	var info profilesInfo
	if code != 0 || json.Unmarshal([]byte(stdout), &info) != nil {
		t.Fatalf("profiles --json: exit %d, %q %s", code, stdout, stderr)
	}
	if strings.Join(info.Profiles, ",") != strings.Join(release.ProfileNames(), ",") || info.BundleSuffix != release.BundleSuffix {
		t.Errorf("profiles --json = %+v", info)
	}
	if code, stdout, _ := e2eCLI(t, nil, "profiles"); code != 0 || stdout != "debug\ndebug-read-only\nlocked-read-only\n" {
		t.Errorf("profiles: exit %d, %q", code, stdout)
	}
	if code, stdout, _ := e2eCLI(t, nil, "profiles", "--check", "debug-read-only"); code != 0 || stdout != "debug-read-only\n" {
		t.Errorf("profiles --check debug-read-only: exit %d, %q", code, stdout)
	}
	if code, _, stderr := e2eCLI(t, nil, "profiles", "--check", "prod"); code != 2 || !strings.Contains(stderr, "prod") {
		t.Errorf("profiles --check prod: exit %d, %s", code, stderr)
	}
}
