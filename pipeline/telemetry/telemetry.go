// Package telemetry sends the pipeline's OpenTelemetry spans to the OTLP endpoint its environment
// names: the Dagger engine hands every exec OTEL_EXPORTER_OTLP_* and TRACEPARENT, so the stages
// of `dagger call release-kms` appear nested in the call's trace. Without those variables nothing
// is set up and nothing is exported.
package telemetry

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ServiceName names the spans' service.
const ServiceName = "mero-release"

// Tracing is the tracer of one process, or none.
type Tracing struct {
	// Tracer starts the spans; nil when no OTLP endpoint is configured.
	Tracer   trace.Tracer
	shutdown func(context.Context) error
}

// Endpoint returns the OTLP/HTTP traces URL the environment names:
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces; "" when
// neither is set.
func Endpoint(getenv func(string) string) string {
	if u := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); u != "" {
		return u
	}
	if u := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); u != "" {
		return strings.TrimRight(u, "/") + "/v1/traces"
	}
	return ""
}

// Start sets up tracing from the environment: an OTLP/HTTP exporter to Endpoint and, when
// TRACEPARENT (W3C trace context) is set, the returned context carries it as the parent of every
// span. Without an endpoint it returns ctx and a Tracing without a tracer. A protocol other than
// http/protobuf, or an endpoint that is not an http(s) URL, is an error: the caller runs without
// spans.
func Start(ctx context.Context, getenv func(string) string) (context.Context, *Tracing, error) {
	url := Endpoint(getenv)
	if url == "" {
		return ctx, &Tracing{}, nil
	}
	if p := cmp.Or(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), getenv("OTEL_EXPORTER_OTLP_PROTOCOL")); p != "" && p != "http/protobuf" {
		return ctx, &Tracing{}, fmt.Errorf("telemetry: OTLP protocol %q: only http/protobuf is supported; no spans are sent", p)
	}
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return ctx, &Tracing{}, fmt.Errorf("telemetry: OTLP endpoint %q: want an http(s) URL; no spans are sent", url)
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(url))
	if err != nil {
		return ctx, &Tracing{}, fmt.Errorf("telemetry: OTLP exporter %s: %w", url, err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", ServiceName))))
	carrier := propagation.MapCarrier{"traceparent": getenv("TRACEPARENT"), "tracestate": getenv("TRACESTATE")}
	ctx = propagation.TraceContext{}.Extract(ctx, carrier)
	return ctx, &Tracing{Tracer: tp.Tracer("github.com/calimero-network/mero-release/pipeline/flow"), shutdown: tp.Shutdown}, nil
}

// Shutdown sends the spans not yet exported and stops the exporter (nothing without a tracer).
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	if err := t.shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	return nil
}
