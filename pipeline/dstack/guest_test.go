package dstack_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/dstack/guestsim"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// shortDir is a temporary directory short enough for a unix socket path.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ds")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestGuestAPIAgainstSimulator(t *testing.T) {
	ctx := context.Background()
	auth, err := tdxsim.NewAuthority([]byte(tdxsim.DefaultSeed))
	if err != nil {
		t.Fatal(err)
	}
	osImg := dstack.PinnedOSImage()
	m, _ := osImg.Measurements()
	vm, err := auth.BootRegisters(ctx, osImg.Name, "kms", m)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Shutdown()
	var composeHash [32]byte
	composeHash[0] = 0xab
	events, _ := measure.DstackBoot{}.Events(composeHash)
	for _, ev := range events {
		if err := vm.ExtendRTMR3(ev); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(shortDir(t), "dstack.sock")
	agent, err := guestsim.Start(sock, guestsim.Options{VM: vm, KeySeed: []byte("seed"), Info: dstack.Info{AppID: "ab", ComposeHash: hex.EncodeToString(composeHash[:])}})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	c, err := dstack.NewGuestClient(sock)
	if err != nil {
		t.Fatal(err)
	}
	rd := []byte("nonce-and-binding")
	q, err := c.GetQuote(ctx, rd)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := tdx.ParseQuote(q.Quote)
	if err != nil {
		t.Fatal(err)
	}
	if err := parsed.Verify(tdx.VerifyOptions{TrustedRoots: auth.RootPool()}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(parsed.ReportData[:]), string(rd)) || len(q.ReportData) != 64 {
		t.Errorf("report data %x", parsed.ReportData)
	}
	// The event log replays to the quote's RTMR3; its MRTD is the pinned OS's.
	evs, err := q.Events()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(events) || q.EventLog[2].Event != measure.EventComposeHash || q.EventLog[2].EventType != dstack.RuntimeEventType {
		t.Fatalf("event log %+v", q.EventLog)
	}
	rtmrs, err := tdx.Replay(evs)
	if err != nil || rtmrs[3] != parsed.Measurements().RTMR[3] {
		t.Errorf("replayed RTMR3 %x differs from the quote's (%v)", rtmrs[3], err)
	}
	if pm := parsed.Measurements(); hex.EncodeToString(pm.MRTD[:]) != osImg.MRTD {
		t.Error("MRTD is not the pinned dstack OS's")
	}
	info, err := c.Info(ctx)
	if err != nil || info.ComposeHash != hex.EncodeToString(composeHash[:]) {
		t.Errorf("info %+v, %v", info, err)
	}
	k1, err := c.GetKey(ctx, "/kms", "root", "secp256k1")
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := c.GetKey(ctx, "/kms", "other", "secp256k1")
	if len(k1.Key) != 32 || string(k1.Key) == string(k2.Key) || len(k1.SignatureChain) != 1 {
		t.Errorf("keys %x %x", k1.Key, k2.Key)
	}
	digest := sha256.Sum256([]byte("root:" + hex.EncodeToString(k1.Key)))
	if !ecdsa.VerifyASN1(agent.SignerPublicKey(), digest[:], k1.SignatureChain[0]) {
		t.Error("the key's signature chain does not verify")
	}
	if _, err := c.GetQuote(ctx, make([]byte, 65)); err == nil {
		t.Error("65 bytes of report data accepted")
	}
}

func TestGuestClientErrors(t *testing.T) {
	c, err := dstack.NewGuestClient(filepath.Join(shortDir(t), "absent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetQuote(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "absent.sock") {
		t.Errorf("absent socket: %v", err)
	}
	if got := dstack.GuestSockets(); len(got) != 4 || got[0] != "/var/run/dstack/dstack.sock" || got[3] != "/run/dstack.sock" {
		t.Errorf("socket order %v", got)
	}
}
