package agent_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"

	"github.com/calimero-network/mero-release/pipeline/agent"
	"github.com/calimero-network/mero-release/pipeline/agent/simtsm"
	"github.com/calimero-network/mero-release/pipeline/gcp/guestapi"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// metadataServer is a GCE metadata server for one VM: instance attributes the test sets,
// guest attributes the agent publishes. It refuses requests without Metadata-Flavor: Google.
type metadataServer struct {
	*httptest.Server
	mu    sync.Mutex
	attrs map[string]string
	guest map[string]string
}

func newMetadataServer(t *testing.T) *metadataServer {
	m := &metadataServer{attrs: map[string]string{}, guest: map[string]string{}}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata-Flavor") != "Google" {
			http.Error(w, "no flavor", http.StatusForbidden)
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		switch p := r.URL.Path; {
		case r.Method == http.MethodGet && strings.HasPrefix(p, "/computeMetadata/v1/instance/attributes/"):
			v, ok := m.attrs[strings.TrimPrefix(p, "/computeMetadata/v1/instance/attributes/")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			_, _ = io.WriteString(w, v)
		case r.Method == http.MethodPut && strings.HasPrefix(p, "/computeMetadata/v1/instance/guest-attributes/"):
			b, _ := io.ReadAll(r.Body)
			m.guest[strings.TrimPrefix(p, "/computeMetadata/v1/instance/guest-attributes/")] = string(b)
		case r.Method == http.MethodDelete && strings.HasPrefix(p, "/computeMetadata/v1/instance/guest-attributes/"):
			delete(m.guest, strings.TrimPrefix(p, "/computeMetadata/v1/instance/guest-attributes/"))
		default:
			http.Error(w, "no", http.StatusMethodNotAllowed)
		}
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *metadataServer) set(k, v string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attrs[k] = v
}

// published returns the agent's guest attributes of namespace mero-tee, by key.
func (m *metadataServer) published() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for k, v := range m.guest {
		if key, ok := strings.CutPrefix(k, guestapi.Namespace+"/"); ok {
			out[key] = v
		}
	}
	return out
}

// waitFor polls the published attributes until key (whole, in parts or as an error) is there.
func (m *metadataServer) waitFor(t *testing.T, key string) (text string, err error) {
	t.Helper()
	for range 2000 {
		text, done, _, err := guestapi.Join(m.published(), key)
		if done || err != nil {
			return text, err
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s never published; have %v", key, maps.Collect(maps.All(m.published())))
	return "", nil
}

// start runs the agent on a simulator-backed configfs-tsm until the test ends.
func start(t *testing.T, m *metadataServer, q agent.Quoter) *bytes.Buffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var log bytes.Buffer
	var mu sync.Mutex
	go func() {
		done <- agent.Run(ctx, agent.Config{MetadataURL: m.URL + "/computeMetadata/v1", Quoter: q, PollInterval: 5 * time.Millisecond,
			PartSize: 1000, Version: "test", Log: outcome.NewLogger(lockedBuffer{&mu, &log})})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &log
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func simulator(t *testing.T) (*tdxsim.Authority, *tdxsim.VM) {
	t.Helper()
	auth, err := tdxsim.NewAuthority([]byte(tdxsim.DefaultSeed))
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.Boot(context.Background(), &tdxsim.Image{Name: "node", Profile: "debug", Firmware: []byte("fw"), Kernel: []byte("k"),
		Initrd: []byte("i"), Cmdline: "mero.profile=debug", VCPUs: 4, MemoryMB: 16384})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Shutdown)
	return auth, v
}

// verify decodes a published quote, verifies it against the simulator's root and returns its
// report data.
func verify(t *testing.T, auth *tdxsim.Authority, text string) [64]byte {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		t.Fatal(err)
	}
	q, err := tdx.ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Verify(tdx.VerifyOptions{TrustedRoots: auth.RootPool(), Now: time.Now()}); err != nil {
		t.Fatalf("the agent's quote does not verify: %v", err)
	}
	return q.ReportData
}

func TestAgentBootQuoteAndRequests(t *testing.T) {
	auth, v := simulator(t)
	m := newMetadataServer(t)
	var nonce [64]byte
	nonce[0], nonce[63] = 0x11, 0x22
	m.set(guestapi.MetadataNonce, hex.EncodeToString(nonce[:]))
	start(t, m, agent.TSMQuoter{Client: simtsm.New(v, nil)})

	text, err := m.waitFor(t, guestapi.QuoteKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := verify(t, auth, text); got != nonce {
		t.Errorf("boot quote report data %x, want the nonce", got)
	}
	if _, ok := m.published()[guestapi.PartsKey(guestapi.QuoteKey)]; !ok {
		t.Error("a quote longer than the part size was not published in parts")
	}
	// Two requests in turn: each answered over its own report data; the first answer is
	// removed when the second arrives.
	for i, id := range []string{"req-1", "req-2"} {
		var rd [64]byte
		rd[5] = byte(i + 1)
		s, _ := guestapi.FormatRequest(guestapi.Request{ID: id, ReportData: rd})
		m.set(guestapi.MetadataQuoteRequest, s)
		text, err := m.waitFor(t, guestapi.ResponseKey(id))
		if err != nil {
			t.Fatal(err)
		}
		if got := verify(t, auth, text); got != rd {
			t.Errorf("request %s: report data %x", id, got)
		}
	}
	for k := range m.published() {
		if strings.HasPrefix(k, "quote-req-1") {
			t.Errorf("the first answer was kept: %s", k)
		}
	}
	if m.published()[guestapi.AgentVersionKey] != "test" {
		t.Error("no agent-version")
	}
}

func TestAgentRefusals(t *testing.T) {
	_, v := simulator(t)
	t.Run("bad nonce", func(t *testing.T) {
		m := newMetadataServer(t)
		m.set(guestapi.MetadataNonce, strings.Repeat("AB", 64))
		start(t, m, agent.TSMQuoter{Client: simtsm.New(v, nil)})
		if _, err := m.waitFor(t, guestapi.QuoteKey); err == nil || !strings.Contains(err.Error(), "lower-case hex") {
			t.Fatalf("bad nonce: %v", err)
		}
	})
	t.Run("malformed requests", func(t *testing.T) {
		m := newMetadataServer(t)
		m.set(guestapi.MetadataNonce, strings.Repeat("00", 64))
		quotes := 0
		var mu sync.Mutex
		start(t, m, agent.TSMQuoter{Client: simtsm.New(v, func() error { mu.Lock(); quotes++; mu.Unlock(); return nil })})
		if _, err := m.waitFor(t, guestapi.QuoteKey); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"r1:" + strings.Repeat("0", 127), "r2:" + strings.Repeat("AB", 64), "r3;id:" + strings.Repeat("00", 64)} {
			m.set(guestapi.MetadataQuoteRequest, bad)
			id, _, _ := strings.Cut(bad, ":")
			if strings.Contains(id, ";") {
				time.Sleep(50 * time.Millisecond) // an id the agent cannot answer under: ignored
				continue
			}
			if _, err := m.waitFor(t, guestapi.ResponseKey(id)); err == nil {
				t.Errorf("request %q answered with a quote", bad)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if quotes != 1 {
			t.Errorf("%d quotes taken; malformed requests must never reach the TSM", quotes)
		}
	})
	t.Run("TSM that is not TDX", func(t *testing.T) {
		m := newMetadataServer(t)
		m.set(guestapi.MetadataNonce, strings.Repeat("00", 64))
		start(t, m, agent.TSMQuoter{Client: &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": faketsm.ReportV7(0)}}})
		if _, err := m.waitFor(t, guestapi.QuoteKey); err == nil || !strings.Contains(err.Error(), `provider "fake"`) {
			t.Fatalf("non-TDX TSM: %v", err)
		}
	})
	t.Run("unavailable TSM", func(t *testing.T) {
		m := newMetadataServer(t)
		m.set(guestapi.MetadataNonce, strings.Repeat("00", 64))
		start(t, m, agent.Unavailable(io.ErrUnexpectedEOF))
		if _, err := m.waitFor(t, guestapi.QuoteKey); err == nil || !strings.Contains(err.Error(), "configfs-tsm unavailable") {
			t.Fatalf("unavailable TSM: %v", err)
		}
	})
	t.Run("quote over other report data", func(t *testing.T) {
		m := newMetadataServer(t)
		m.set(guestapi.MetadataNonce, strings.Repeat("01", 64))
		start(t, m, otherData{v})
		if _, err := m.waitFor(t, guestapi.QuoteKey); err == nil || !strings.Contains(err.Error(), "other report data") {
			t.Fatalf("wrong report data: %v", err)
		}
	})
}

// otherData quotes the zero report data whatever is asked.
type otherData struct{ v *tdxsim.VM }

func (o otherData) Quote(context.Context, [64]byte) ([]byte, error) { return o.v.Quote([64]byte{}) }

func TestMainUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"unknown flag":  {"-listen", ":80"},
		"argument":      {"serve"},
		"bad interval":  {"-poll-interval", "0s"},
		"negative part": {"-part-size", "-1"},
		"bad URL":       {"-metadata-url", "file:///etc/passwd"},
	} {
		var stderr bytes.Buffer
		if code := agent.Main(context.Background(), args, &stderr, agent.Unavailable(io.EOF), "test"); code != outcome.Usage {
			t.Errorf("%s: exit %d, want %d\n%s", name, code, outcome.Usage, stderr.String())
		}
	}
}
