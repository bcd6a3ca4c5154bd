package main

import (
	"crypto/x509"
	"fmt"
	"os"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// tdxRootPool loads the PEM file of a --trusted-root flag naming the roots TDX quotes must chain
// to. A file that cannot be read, or holds no usable certificate, is a usage error (exit 2);
// the latter names the file.
func tdxRootPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, outcome.UsageErrorf("--trusted-root: %v", err)
	}
	pool, err := tdx.RootPoolFromPEM(data)
	if err != nil {
		return nil, fmt.Errorf("--trusted-root %s: %w", path, err)
	}
	return pool, nil
}
