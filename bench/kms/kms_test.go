// Package kmsbench measures the sample KMS (examples/kms/server) on loopback: the crypto limit
// of one key-release flow (its signatures, quote and HKDF, no HTTP), complete
// challenge/get-key flows at 1, 4 and 16 concurrent callers (throughput and latency
// percentiles), the memory held by 100 000 pending challenges, and the pile-up against the
// global cap. Run with bench/kms/run.sh (interleaved rounds, goals checked) or
//
//	go test ./bench/kms -run '^$' -bench . -benchtime 2000x
package kmsbench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/examples/kms/server"
	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// setup starts a KMS with a locked-read-only policy accepting one node image on a loopback
// listener (tune adjusts its options) and returns it with a booted node of that image.
func setup(b *testing.B, tune func(*server.Options)) (*httptest.Server, *server.Server, *tdxsim.Authority, *tdxsim.VM) {
	b.Helper()
	auth, err := tdxsim.NewAuthority([]byte("kms bench"))
	if err != nil {
		b.Fatal(err)
	}
	img := &tdxsim.Image{Name: "node", Profile: "locked-read-only", Firmware: []byte("fw"), Kernel: []byte("k"), Initrd: []byte("i"),
		Cmdline: "mero.profile=locked-read-only", VCPUs: 4, MemoryMB: 16384}
	m, _, err := tdxsim.Measure(img)
	if err != nil {
		b.Fatal(err)
	}
	h := m.Hex()
	pub := &measure.Published{SchemaVersion: "1", Family: release.Node, Version: "1.0.0", Profiles: map[release.Profile]measure.Record{
		release.LockedReadOnly: {MRTD: h.MRTD, RTMR0: h.RTMR0, RTMR1: h.RTMR1, RTMR2: h.RTMR2, RTMR3: h.RTMR3, Source: "tdx-simulator", MeasuredAt: "2026-01-01T00:00:00Z"},
	}}
	pol, err := policy.Generate("1.0.0", release.LockedReadOnly, []*measure.Published{pub}, nil)
	if err != nil {
		b.Fatal(err)
	}
	data, _ := pol.Marshal()
	lp, err := server.LoadPolicyBytes(data, "bench", "", "1.0.0", "locked-read-only")
	if err != nil {
		b.Fatal(err)
	}
	kmsVM, err := server.BootSimulatedDstack(context.Background(), auth, "00000000000000000000000000000000000000000000000000000000000000ff")
	if err != nil {
		b.Fatal(err)
	}
	opts := server.Options{Policy: lp, RootSecret: []byte(server.DevRootSecret), Quoter: kmsVM, TrustedRoots: auth.RootPool()}
	if tune != nil {
		tune(&opts)
	}
	srv, err := server.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv) // 127.0.0.1, port 0
	node, err := auth.Boot(context.Background(), img)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ts.Close(); kmsVM.Shutdown(); node.Shutdown() })
	return ts, srv, auth, node
}

// percentile returns the p-th percentile (0–100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// BenchmarkFlowCrypto is the crypto limit of one key-release flow, measured serially in
// process with no HTTP and no JSON: the peer's signature and its verification, the node's
// quote and its verification (PCK chain, QE report, attestation key), and the HKDF. It reports
// the flows/s all CPUs could reach if nothing else cost anything (GOMAXPROCS / time per flow):
// the ceiling BenchmarkFlows is compared with.
func BenchmarkFlowCrypto(b *testing.B) {
	_, _, auth, node := setup(b, nil)
	peer, err := kmsclient.NewPeer("bench-node", nil)
	if err != nil {
		b.Fatal(err)
	}
	nonce := make([]byte, kmsclient.NonceSize)
	pub := peer.PublicKey()
	roots := auth.RootPool()
	now := time.Now()
	b.ResetTimer()
	for b.Loop() {
		msg := kmsclient.SignatureMessage("challenge-id", nonce, peer.ID)
		sig, err := peer.Sign(nil, msg)
		if err != nil {
			b.Fatal(err)
		}
		pk, err := kmsclient.ParsePublicKey(pub)
		if err != nil {
			b.Fatal(err)
		}
		if err := kmsclient.VerifySignature(pk, msg, sig); err != nil {
			b.Fatal(err)
		}
		rd, _ := kmsclient.PeerReportData(nonce, pub)
		raw, err := node.Quote(rd)
		if err != nil {
			b.Fatal(err)
		}
		q, err := tdx.ParseQuote(raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Verify(tdx.VerifyOptions{TrustedRoots: roots, Now: now}); err != nil {
			b.Fatal(err)
		}
		if _, err := server.DeriveKey([]byte(server.DevRootSecret), release.LockedReadOnly, peer.ID); err != nil {
			b.Fatal(err)
		}
	}
	perFlow := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(runtime.GOMAXPROCS(0))/perFlow, "limit-flows/s")
}

// BenchmarkFlows runs complete key releases over loopback HTTP with 1, 4 and 16 concurrent
// callers, each its own peer: POST /challenge, the peer signature, the node's quote over
// nonce ‖ SHA-256(key), POST /get-key (signature, quote chain, report data, TCB and policy
// checks, HKDF). It reports flows/s and the p50/p99 latency of one flow.
func BenchmarkFlows(b *testing.B) {
	for _, conc := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("conc-%d", conc), func(b *testing.B) {
			ts, _, auth, node := setup(b, nil)
			transport := &http.Transport{MaxIdleConnsPerHost: 64}
			defer transport.CloseIdleConnections()
			client, err := kmsclient.New(ts.URL, kmsclient.Options{TrustedRoots: auth.RootPool(), HTTPClient: &http.Client{Transport: transport, Timeout: time.Minute}})
			if err != nil {
				b.Fatal(err)
			}
			var next sync.Mutex
			remaining := b.N
			lat := make([][]time.Duration, conc)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					peer, err := kmsclient.NewPeer(fmt.Sprintf("bench-node-%d", w), nil)
					if err != nil {
						b.Error(err)
						return
					}
					for {
						next.Lock()
						if remaining == 0 {
							next.Unlock()
							return
						}
						remaining--
						next.Unlock()
						t0 := time.Now()
						if _, err := client.RequestKey(context.Background(), node, peer); err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "flows/s")
			b.ReportMetric(float64(percentile(all, 50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(all, 99).Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkPendingChallenges holds b.N challenges (run.sh: 100 000) issued to distinct peers
// and never used, the global cap raised to allow them, and reports the heap they hold: bytes
// per pending challenge. Requests go straight to the handler (no sockets), so the heap is the
// KMS's.
func BenchmarkPendingChallenges(b *testing.B) {
	_, srv, _, _ := setup(b, func(o *server.Options) {
		o.MaxChallenges, o.MaxChallengesPerSource = b.N+1, b.N+1
	})
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := range b.N {
		body, _ := json.Marshal(kmsclient.ChallengeRequest{PeerID: fmt.Sprintf("peer-%d", i)})
		req := httptest.NewRequest(http.MethodPost, "/challenge", bytesReader(body))
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("challenge %d: %d %s", i, rec.Code, rec.Body.String())
		}
	}
	b.StopTimer()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := srv.OutstandingChallenges()
	if held != b.N {
		b.Fatalf("%d challenges pending, want %d", held, b.N)
	}
	growth := float64(after.HeapInuse) - float64(before.HeapInuse)
	b.ReportMetric(float64(held), "pending")
	b.ReportMetric(growth/(1<<20), "heap-MiB")
	b.ReportMetric(growth/float64(held), "B/challenge")
}

// BenchmarkChallengePileUp requests challenges that are never used, far beyond the global cap,
// from many peers: the KMS answers 429 past the cap and its heap stays bounded. It reports the
// outstanding challenges, the 429s and the heap growth per held challenge.
func BenchmarkChallengePileUp(b *testing.B) {
	const limit = 4096
	ts, srv, _, _ := setup(b, func(o *server.Options) { o.MaxChallenges, o.MaxChallengesPerSource = limit, limit })
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	defer transport.CloseIdleConnections()
	client, err := kmsclient.New(ts.URL, kmsclient.Options{HTTPClient: &http.Client{Transport: transport}})
	if err != nil {
		b.Fatal(err)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var mu sync.Mutex
	refused, worker := 0, 0
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		worker++
		id := worker
		mu.Unlock()
		n, i := 0, 0
		for pb.Next() {
			i++
			_, err := client.Challenge(context.Background(), fmt.Sprintf("pile-up-%d-%d", id, i))
			if err != nil {
				if ae, ok := kmsclient.AsAPIError(err); ok && ae.Code == kmsclient.CodeTooManyChallenges {
					n++
					continue
				}
				b.Error(err)
				return
			}
		}
		mu.Lock()
		refused += n
		mu.Unlock()
	})
	b.StopTimer()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := srv.OutstandingChallenges()
	if held > limit {
		b.Fatalf("%d challenges outstanding, the cap is %d", held, limit)
	}
	if b.N > limit && refused != b.N-held {
		b.Fatalf("%d requests, %d held, %d refused with 429", b.N, held, refused)
	}
	growth := float64(after.HeapInuse) - float64(before.HeapInuse)
	// Memory is bounded by the cap, not by the number of requests: allow 8 KiB per held
	// challenge (≈ 20× what one costs) plus 8 MiB for the HTTP machinery.
	if bound := float64(limit*8<<10 + 8<<20); growth > bound {
		b.Fatalf("heap grew by %.1f MiB for %d held challenges (bound %.1f MiB): challenges are not bounded", growth/(1<<20), held, bound/(1<<20))
	}
	b.ReportMetric(float64(held), "outstanding")
	b.ReportMetric(float64(refused), "429s")
	b.ReportMetric(growth/(1<<20), "heap-growth-MiB")
	if held > 0 {
		b.ReportMetric(growth/float64(held), "B/challenge")
	}
}

// bytesReader avoids importing bytes for one call site.
func bytesReader(b []byte) *strings.Reader { return strings.NewReader(string(b)) }
