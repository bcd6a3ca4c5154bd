package release

import "strings"

// LocalImageRegistry is the registry host of a KMS image reference that no registry serves: a
// KMS release built without a registry records its profile images as localhost/NAME@DIGEST.
const LocalImageRegistry = "localhost"

// LocalImageRef is the reference a release built without a registry records for an image.
func LocalImageRef(name, digest string) string {
	return LocalImageRegistry + "/" + name + "@" + digest
}

// PullableImage reports whether ref is an image a registry serves by digest
// (REGISTRY/NAME@sha256:…), not a LocalImageRef.
func PullableImage(ref string) bool {
	repo, digest, ok := strings.Cut(ref, "@")
	return ok && strings.HasPrefix(digest, "sha256:") && !strings.HasPrefix(repo, LocalImageRegistry+"/") && strings.Contains(repo, "/")
}
