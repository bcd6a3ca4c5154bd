// Package guestsim simulates the dstack guest agent for local runs and tests: a real HTTP
// server on a unix socket speaking GetQuote, Info and GetKey as dstack's agent does (SPEC §11),
// backed by a TDX simulator VM (its quotes, its RTMR3 event log) and a key seed.
package guestsim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// Options configure a simulated guest agent.
type Options struct {
	// VM quotes and holds the event log; required.
	VM *tdxsim.VM
	// Info is what /Info answers.
	Info dstack.Info
	// KeySeed derives /GetKey keys (HKDF-SHA256 over path and purpose); required.
	KeySeed []byte
}

// Agent is a running simulated guest agent.
type Agent struct {
	socket string
	srv    *http.Server
	done   chan struct{}
	signer *ecdsa.PrivateKey
	opts   Options
}

// Start listens on the unix socket path (which must not exist) and serves until Close.
func Start(path string, opts Options) (*Agent, error) {
	if opts.VM == nil || len(opts.KeySeed) == 0 {
		return nil, errors.New("dstack guest simulator: a VM and a key seed are required")
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("dstack guest simulator: %w", err)
	}
	d := new(big.Int).SetBytes(hkdfBytes(opts.KeySeed, "guestsim signer", 32))
	curve := elliptic.P256()
	d.Mod(d, new(big.Int).Sub(curve.Params().N, big.NewInt(1)))
	d.Add(d, big.NewInt(1))
	signer, err := ecdsa.ParseRawPrivateKey(curve, d.FillBytes(make([]byte, 32)))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("dstack guest simulator: signer: %w", err)
	}
	a := &Agent{socket: path, done: make(chan struct{}), signer: signer, opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /GetQuote", a.getQuote)
	mux.HandleFunc("POST /Info", a.info)
	mux.HandleFunc("POST /GetKey", a.getKey)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		_ = a.srv.Serve(ln)
		close(a.done)
	}()
	return a, nil
}

// Socket is the unix socket path the agent listens on.
func (a *Agent) Socket() string { return a.socket }

// Close stops the agent and removes its socket.
func (a *Agent) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	<-a.done
	_ = os.Remove(a.socket)
	return err
}

func (a *Agent) getQuote(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ReportData string `json:"report_data"`
	}
	if !decode(w, r, &req) {
		return
	}
	rd, err := hex.DecodeString(req.ReportData)
	if err != nil || len(rd) > 64 {
		http.Error(w, "report_data: at most 64 bytes of hex", http.StatusBadRequest)
		return
	}
	var data [64]byte
	copy(data[:], rd)
	quote, err := a.opts.VM.Quote(data)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var events []dstack.GuestEvent
	for _, ev := range a.opts.VM.EventLog() {
		name, payload, _ := strings.Cut(ev.Event, ": ")
		events = append(events, dstack.GuestEvent{IMR: ev.IMR, EventType: dstack.RuntimeEventType, Digest: hex.EncodeToString(ev.Digest[:]), Event: name, EventPayload: payload})
	}
	log, _ := json.Marshal(events)
	vmConfig, _ := json.Marshal(map[string]any{"os_image_hash": "", "cpu_count": 0, "memory_size": 0})
	writeJSON(w, map[string]string{"quote": hex.EncodeToString(quote), "event_log": string(log), "report_data": hex.EncodeToString(data[:]), "vm_config": string(vmConfig)})
}

func (a *Agent) info(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if !decode(w, r, &req) {
		return
	}
	writeJSON(w, a.opts.Info)
}

// getKey derives key = HKDF-SHA256(seed, path ‖ 0 ‖ purpose) and a one-element signature
// chain: the simulator's P-256 signature over SHA-256(purpose ":" hex(key)).
func (a *Agent) getKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path      string `json:"path"`
		Purpose   string `json:"purpose"`
		Algorithm string `json:"algorithm"`
	}
	if !decode(w, r, &req) {
		return
	}
	key := hkdfBytes(a.opts.KeySeed, req.Path+"\x00"+req.Purpose, 32)
	digest := sha256.Sum256([]byte(req.Purpose + ":" + hex.EncodeToString(key)))
	sig, err := ecdsa.SignASN1(zeroReader{}, a.signer, digest[:])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, map[string]any{"key": hex.EncodeToString(key), "signature_chain": []string{hex.EncodeToString(sig)}})
}

// SignerPublicKey is the P-256 key GetKey's signature chain is made with.
func (a *Agent) SignerPublicKey() *ecdsa.PublicKey { return &a.signer.PublicKey }

func hkdfBytes(seed []byte, info string, n int) []byte {
	b, err := hkdf.Key(sha256.New, seed, []byte("mero-release dstack guestsim"), info, n)
	if err != nil {
		panic(err) // n is a small constant: unreachable
	}
	return b
}

// zeroReader makes ECDSA signatures deterministic in the simulator (crypto/ecdsa mixes the
// private key and message into the nonce).
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	if err := dec.Decode(v); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
