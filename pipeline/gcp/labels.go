package gcp

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/api/option"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/vm"
)

var labelKeyRE = lazyre.New(`^[a-z][a-z0-9_-]{0,62}$`)

// maxLabelValue is GCE's limit on a label value's length.
const maxLabelValue = 63

// LabelValue turns s into a valid GCE label value: lower-cased, every character other than
// [a-z0-9_-] replaced by '_', at most 63 characters.
func LabelValue(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if b.Len() == maxLabelValue {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Labels returns the labels of an ephemeral VM: extra (values made valid with LabelValue) plus
// mero-release=ephemeral, profile and created-at (Unix seconds of now), which extra cannot
// override. A key that is not a valid GCE label key is a usage error.
func Labels(extra map[string]string, profile release.Profile, now time.Time) (map[string]string, error) {
	out := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		if !labelKeyRE().MatchString(k) {
			return nil, outcome.UsageErrorf("label key %q: want 1–63 lower-case letters, digits, '_' or '-', starting with a letter", k)
		}
		out[k] = LabelValue(extra[k])
	}
	out[vm.LabelManaged] = vm.ManagedEphemeral
	out[vm.LabelProfile] = LabelValue(string(profile))
	out[vm.LabelCreatedAt] = strconv.FormatInt(now.Unix(), 10)
	return out, nil
}

// Filter is the instances.list filter selecting VMs that carry every label of selector:
// (labels.K1 = "V1") AND (labels.K2 = "V2"), keys sorted. Keys must be valid label keys and
// values valid label values (so that nothing can be injected into the expression).
func Filter(selector map[string]string) (string, error) {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(selector)) {
		v := selector[k]
		if !labelKeyRE().MatchString(k) {
			return "", outcome.UsageErrorf("label selector: key %q is not a label key", k)
		}
		if LabelValue(v) != v {
			return "", outcome.UsageErrorf("label selector: %s=%q is not a label value (lower-case letters, digits, '_' or '-')", k, v)
		}
		parts = append(parts, fmt.Sprintf("(labels.%s = %q)", k, v))
	}
	return strings.Join(parts, " AND "), nil
}

func parseUnix(s string) (time.Time, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(n, 0).UTC(), true
}

// CredentialsOption checks that key is a service-account key (JSON with type
// "service_account", client_email and private_key) and returns the client option that
// authenticates with it. The key's content never appears in an error.
func CredentialsOption(key []byte) (option.ClientOption, error) {
	var k struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
		ProjectID   string `json:"project_id"`
	}
	if err := json.Unmarshal(key, &k); err != nil {
		return nil, outcome.UsageErrorf("gcp credentials: not a JSON service-account key (%d bytes)", len(key))
	}
	switch {
	case k.Type != "service_account":
		return nil, outcome.UsageErrorf("gcp credentials: type is %q, want \"service_account\"", k.Type)
	case k.ClientEmail == "":
		return nil, outcome.UsageErrorf("gcp credentials: client_email: empty")
	case !strings.Contains(k.PrivateKey, "PRIVATE KEY"):
		return nil, outcome.UsageErrorf("gcp credentials: private_key: not a PEM private key")
	}
	return option.WithAuthCredentialsJSON(option.ServiceAccount, key), nil
}
