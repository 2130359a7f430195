package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/internal/estest"
)

// The OpenTelemetry Go SDK's own OTLP log exporters (HTTP and gRPC) pointed
// at the collector, as an instrumented service would: the records are
// indexed with the service's name, level and body, and the X-Request-ID
// attribute correlates them into the request's trace.
func TestOpenTelemetrySDKToCollector(t *testing.T) {
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	col := startCollector(t, dir, es.URL, func(c *collector.Config) {
		c.OTLP.HTTPListen, c.OTLP.GRPCListen = "127.0.0.1:0", "127.0.0.1:0"
		c.Correlation.Window = 200 * time.Millisecond
	})
	defer stopCollector(t, col)
	ctx := context.Background()
	httpExp, err := otlploghttp.New(ctx, otlploghttp.WithEndpoint(col.OTLP().HTTPAddr()), otlploghttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	grpcExp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(col.OTLP().GRPCAddr()), otlploggrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	for i, exp := range []sdklog.Exporter{httpExp, grpcExp} {
		service := []string{"cart", "payment"}[i]
		lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)),
			sdklog.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service))))
		logger := lp.Logger("shop")
		for n := 0; n < 10; n++ {
			var r otellog.Record
			r.SetTimestamp(time.Now())
			r.SetSeverity(otellog.SeverityInfo)
			r.SetSeverityText("INFO")
			r.SetBody(attribute.StringValue("handled"))
			r.AddAttributes(attribute.StringSlice("http.request.header.x-request-id", []string{"req-" + string(rune('a'+n))}))
			logger.Emit(ctx, r)
		}
		if err := lp.Shutdown(ctx); err != nil { // flushes the batch
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, "records indexed", func() bool { return es.Count("logs-*") >= 20 })
	eventually(t, 20*time.Second, "traces written", func() bool { return es.Count("traces-*") >= 10 })
	time.Sleep(500 * time.Millisecond)
	if n := es.Count("logs-*"); n != 20 {
		t.Fatalf("%d documents, want 20", n)
	}
	for _, idx := range es.IndicesMatching("logs-*") {
		for _, d := range es.Docs(idx) {
			if s := gjson.GetBytes(d, "service.name").String(); (s != "cart" && s != "payment") || gjson.GetBytes(d, "message").String() != "handled" ||
				gjson.GetBytes(d, "log.level").String() != "info" || gjson.GetBytes(d, "trace.id").String() != gjson.GetBytes(d, "http.request.id").String() {
				t.Fatalf("record not mapped: %s", d)
			}
		}
	}
	for _, idx := range es.IndicesMatching("traces-*") {
		for _, d := range es.Docs(idx) {
			if gjson.GetBytes(d, "event_count").Int() != 2 || gjson.GetBytes(d, "services.#").Int() != 2 {
				t.Fatalf("a request's records from both services are not one trace: %s", d)
			}
		}
	}
}
