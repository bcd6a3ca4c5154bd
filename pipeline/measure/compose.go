package measure

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// MaxComposeSize bounds a compose file.
const MaxComposeSize = 4 << 20

// Compose is a docker compose file or a dstack app-compose, as the KMS measurement reads it.
type Compose struct {
	// Name is the file the compose came from (for messages).
	Name string
	// Canonical is the document as canonical JSON (CanonicalJSON).
	Canonical []byte
	// Hash is the normalised compose hash: SHA-256 of Canonical (dstack's compose-hash).
	Hash [32]byte
	// AppCompose says the document is a dstack app-compose (it has docker_compose_file);
	// otherwise it is a docker compose file (it has services).
	AppCompose bool
	// Images maps each service to its image reference.
	Images map[string]string
}

// HashHex is Hash as 64 lower-case hex characters.
func (c *Compose) HashHex() string { return hex.EncodeToString(c.Hash[:]) }

// LoadCompose reads and parses a compose file (ParseCompose).
func LoadCompose(path string) (*Compose, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, outcome.UsageErrorf("compose: %v", err)
	}
	if st.Size() > MaxComposeSize {
		return nil, outcome.UsageErrorf("compose %s: %d bytes, more than the %d allowed", path, st.Size(), MaxComposeSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, outcome.UsageErrorf("compose: %v", err)
	}
	return ParseCompose(path, data)
}

// ParseCompose parses a docker compose file or a dstack app-compose, given as YAML or JSON,
// and computes its normalised hash: SHA-256 of the document as canonical JSON (the dstack
// rule, SPEC §11). A dstack app-compose is recognised by its docker_compose_file string,
// whose services are read for the image check; a docker compose file by its services map.
// Every service must name an image pinned by digest (…@sha256:<64 hex>): an unpinned image
// would make the hash say nothing about what runs. Errors name the file and service.
func ParseCompose(name string, data []byte) (*Compose, error) {
	canonical, err := CanonicalJSON(name, data)
	if err != nil {
		return nil, err
	}
	doc, err := parseDocument(name, data)
	if err != nil {
		return nil, err
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, outcome.UsageErrorf("compose %s: the document is not a mapping", name)
	}
	c := &Compose{Name: name, Canonical: canonical, Hash: sha256.Sum256(canonical)}
	services := top["services"]
	if inner, ok := top["docker_compose_file"]; ok {
		text, ok := inner.(string)
		if !ok {
			return nil, outcome.UsageErrorf("compose %s: docker_compose_file: want the compose file as a string", name)
		}
		c.AppCompose = true
		innerDoc, err := parseDocument(name+": docker_compose_file", []byte(text))
		if err != nil {
			return nil, err
		}
		m, ok := innerDoc.(map[string]any)
		if !ok {
			return nil, outcome.UsageErrorf("compose %s: docker_compose_file: not a mapping", name)
		}
		services = m["services"]
	} else if services == nil {
		return nil, outcome.UsageErrorf("compose %s: neither a docker compose file (services) nor a dstack app-compose (docker_compose_file)", name)
	}
	svcMap, ok := services.(map[string]any)
	if !ok || len(svcMap) == 0 {
		return nil, outcome.UsageErrorf("compose %s: services: want a non-empty mapping of services", name)
	}
	c.Images = map[string]string{}
	for _, svc := range slices.Sorted(maps.Keys(svcMap)) {
		def, ok := svcMap[svc].(map[string]any)
		if !ok {
			return nil, outcome.UsageErrorf("compose %s: services.%s: not a mapping", name, svc)
		}
		img, ok := def["image"].(string)
		if !ok || img == "" {
			return nil, outcome.UsageErrorf("compose %s: services.%s.image: missing; every service must name an image pinned by digest", name, svc)
		}
		if _, err := imageRefDigest(img); err != nil {
			return nil, outcome.UsageErrorf("compose %s: services.%s.image %q: %v", name, svc, img, err)
		}
		c.Images[svc] = img
	}
	return c, nil
}

var digestRefRE = lazyre.New(`@(sha256:[0-9a-f]{64})$`)

// imageRefDigest returns the digest an image reference is pinned to.
func imageRefDigest(ref string) (string, error) {
	m := digestRefRE().FindStringSubmatch(ref)
	if m == nil {
		return "", fmt.Errorf("not pinned by digest (want NAME@sha256:<64 lower-case hex>)")
	}
	return m[1], nil
}

// ReferenceTo returns the image reference (the first service's, by name) pinned to digest, or
// a verification error (exit 10) listing the compose's images when none is: the compose must
// run the image that was measured.
func (c *Compose) ReferenceTo(digest string) (string, error) {
	for _, svc := range slices.Sorted(maps.Keys(c.Images)) {
		if d, _ := imageRefDigest(c.Images[svc]); d == digest {
			return c.Images[svc], nil
		}
	}
	var refs []string
	for _, svc := range slices.Sorted(maps.Keys(c.Images)) {
		refs = append(refs, svc+"="+c.Images[svc])
	}
	return "", outcome.VerificationErrorf("compose %s does not reference image %s (its images: %s)", c.Name, digest, strings.Join(refs, ", "))
}
