package telemetry

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// receiver is an OTLP/HTTP traces endpoint on 127.0.0.1 that keeps the spans it is sent.
type receiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	paths []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.paths = append(r.paths, req.URL.Path)
	for _, rs := range msg.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			r.spans = append(r.spans, ss.Spans...)
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func env(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }

// TestSpansReachTheEndpointUnderTheParent: with the variables the Dagger engine sets, spans are
// exported over OTLP/HTTP to the endpoint, in the trace and under the span TRACEPARENT names.
func TestSpansReachTheEndpointUnderTheParent(t *testing.T) {
	rec := &receiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	ctx, tr, err := Start(context.Background(), env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"TRACEPARENT": "00-" + traceID + "-" + parentID + "-01",
	}))
	if err != nil || tr.Tracer == nil {
		t.Fatalf("Start: %v, tracer %v", err, tr.Tracer)
	}
	_, span := tr.Tracer.Start(ctx, "measure")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.spans) != 1 || rec.spans[0].Name != "measure" {
		t.Fatalf("spans %v", rec.spans)
	}
	s := rec.spans[0]
	if hex.EncodeToString(s.TraceId) != traceID || hex.EncodeToString(s.ParentSpanId) != parentID {
		t.Errorf("span in trace %x under %x, want %s under %s", s.TraceId, s.ParentSpanId, traceID, parentID)
	}
	if len(rec.paths) == 0 || rec.paths[0] != "/v1/traces" {
		t.Errorf("paths %v", rec.paths)
	}
}

// TestNoEndpointNoTracer: without OTEL_EXPORTER_OTLP_* nothing is set up; an unsupported
// protocol or endpoint is reported and leaves the process without spans.
func TestNoEndpointNoTracer(t *testing.T) {
	ctx := context.Background()
	_, tr, err := Start(ctx, env(nil))
	if err != nil || tr.Tracer != nil || tr.Shutdown(ctx) != nil {
		t.Errorf("no endpoint: %v, tracer %v", err, tr.Tracer)
	}
	for name, vars := range map[string]map[string]string{
		"grpc":   {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
		"socket": {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "unix:///run/otel.sock"},
	} {
		_, tr, err := Start(ctx, env(vars))
		if err == nil || tr.Tracer != nil || !strings.Contains(err.Error(), "no spans are sent") {
			t.Errorf("%s: %v, tracer %v", name, err, tr.Tracer)
		}
	}
	if got := Endpoint(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318/"})); got != "http://h:4318/v1/traces" {
		t.Errorf("Endpoint = %s", got)
	}
}
