// Command dssepayload rewrites the statement inside a DSSE Sigstore bundle, keeping its signature:
// the tampered attestation of scripts/ci/cosign-interop.sh.
//
//	go run ./scripts/ci/internal/dssepayload BUNDLE OLD NEW > TAMPERED
//
// Every OLD in the decoded payload becomes NEW; the bundle is written on stdout.
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dssepayload:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: dssepayload BUNDLE OLD NEW")
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var b map[string]any
	if err := json.Unmarshal(data, &b); err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	env, ok := b["dsseEnvelope"].(map[string]any)
	if !ok {
		return fmt.Errorf("%s: no dsseEnvelope", args[0])
	}
	enc, _ := env["payload"].(string)
	payload, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return fmt.Errorf("%s: payload: %w", args[0], err)
	}
	if !strings.Contains(string(payload), args[1]) {
		return fmt.Errorf("%s: the payload does not contain %q", args[0], args[1])
	}
	env["payload"] = base64.StdEncoding.EncodeToString([]byte(strings.ReplaceAll(string(payload), args[1], args[2])))
	return json.NewEncoder(os.Stdout).Encode(b)
}
