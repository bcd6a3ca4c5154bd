// Package release is the vocabulary of a release: the two families and their tags, the
// three classes (stable, rc, hotfix) with their rules as data, the node profiles, and the
// expected asset list of each family — declared here once and used by publish and audit.
package release
