package release

import (
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// Family is one of the two release families.
type Family string

// The two families (SPEC §1).
const (
	KMS  Family = "mero-kms"
	Node Family = "mero-tee"
)

// Families lists every family in a stable order.
func Families() []Family { return []Family{KMS, Node} }

// ParseFamily accepts "mero-kms"/"kms" and "mero-tee"/"node"/"node-image".
func ParseFamily(s string) (Family, error) {
	switch strings.ToLower(s) {
	case "mero-kms", "kms":
		return KMS, nil
	case "mero-tee", "node", "node-image", "tee":
		return Node, nil
	}
	return "", outcome.UsageErrorf("family %q: must be mero-kms or mero-tee", s)
}

// TagPrefix is the tag prefix, e.g. "mero-kms-v".
func (f Family) TagPrefix() string { return string(f) + "-v" }

// VersionVariable is the repository variable that must equal the tag's version (SPEC §2).
func (f Family) VersionVariable() string {
	if f == KMS {
		return "MERO_KMS_VERSION"
	}
	return "MERO_TEE_VERSION"
}

// Workflow is the GitHub workflow file that releases the family.
func (f Family) Workflow() string {
	if f == KMS {
		return "release-kms-phala.yaml"
	}
	return "release-node-image-gcp.yaml"
}

// Counterpart is the other family: the KMS's counterpart is the node image and vice versa.
func (f Family) Counterpart() Family {
	if f == KMS {
		return Node
	}
	return KMS
}

// Title is a human name for the family.
func (f Family) Title() string {
	if f == KMS {
		return "KMS"
	}
	return "node image"
}
