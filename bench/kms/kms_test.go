// Package kmsbench measures the sample KMS (examples/kms/server) on loopback: concurrent
// challenge/get-key flows (throughput and latency percentiles) and the memory held while
// challenges pile up against the outstanding-challenge cap. Run with bench/kms/run.sh or
//
//	go test ./bench/kms -run '^$' -bench . -benchtime 2000x
package kmsbench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/examples/kms/server"
	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// setup starts a KMS with a locked-read-only policy accepting one node image on a loopback
// listener and returns it with a booted node of that image.
func setup(b *testing.B, maxChallenges int) (*httptest.Server, *server.Server, *tdxsim.Authority, *tdxsim.VM) {
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
	srv, err := server.New(server.Options{Policy: lp, RootSecret: []byte(server.DevRootSecret), Quoter: kmsVM, TrustedRoots: auth.RootPool(), MaxChallenges: maxChallenges})
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

// BenchmarkChallengeGetKey runs complete key releases concurrently (8 per CPU): POST
// /challenge, the peer signature, the node's quote over nonce ‖ SHA-256(key), POST /get-key
// (signature, quote chain, report data, TCB and policy checks, HKDF). It reports flows/s and
// the p50/p99 latency of one flow.
func BenchmarkChallengeGetKey(b *testing.B) {
	ts, _, auth, node := setup(b, server.DefaultMaxChallenges)
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	defer transport.CloseIdleConnections()
	client, err := kmsclient.New(ts.URL, kmsclient.Options{TrustedRoots: auth.RootPool(), HTTPClient: &http.Client{Transport: transport, Timeout: time.Minute}})
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		peer, err := kmsclient.NewPeer("bench-node", nil)
		if err != nil {
			b.Error(err)
			return
		}
		var local []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if _, err := client.RequestKey(context.Background(), node, peer); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "flows/s")
	b.ReportMetric(float64(percentile(lat, 50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 99).Microseconds())/1000, "p99-ms")
}

// BenchmarkChallengePileUp requests challenges that are never used, far beyond the cap: the
// KMS answers 429 past the cap and its heap stays bounded. It reports the outstanding
// challenges, the 429s and the heap growth per held challenge.
func BenchmarkChallengePileUp(b *testing.B) {
	const limit = 4096
	ts, srv, _, _ := setup(b, limit)
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
	refused := 0
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		n := 0
		for pb.Next() {
			_, err := client.Challenge(context.Background(), "pile-up")
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
