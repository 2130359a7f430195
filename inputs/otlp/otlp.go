// Package otlp receives OpenTelemetry logs (OTLP): over HTTP, POST
// /v1/logs with a protobuf or JSON ExportLogsServiceRequest, gzip or not;
// over gRPC, the LogsService. Applications instrumented with OpenTelemetry
// export to it as to a Collector (endpoint :4318 or :4317).
//
// A request is answered with success only once its records are durable. A
// full buffer answers 429 (gRPC: RESOURCE_EXHAUSTED) and an unavailable one
// 503 (UNAVAILABLE), with Retry-After, as the OTLP specification asks, so
// the exporter retries; a request that cannot be read answers 400
// (INVALID_ARGUMENT) and is not retried.
//
// Limits: max_body_bytes bounds a body as sent and max_decompressed_bytes
// what it inflates to (HTTP and gRPC messages alike); max_concurrent_requests
// are handled at once (more get 429); read_timeout bounds reading a request.
// What is refused is counted in
// logweave_input_malformed_total{input="otlp",reason}.
package otlp

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/logweave/logweave/internal/malformed"
	"github.com/logweave/logweave/pipeline"
)

// Config of the OTLP input. Each listener is off when its address is empty.
type Config struct {
	// HTTPListen serves POST /v1/logs (OTLP/HTTP's port is 4318).
	HTTPListen string `yaml:"http_listen"`
	// GRPCListen serves the LogsService (OTLP/gRPC's port is 4317).
	GRPCListen string `yaml:"grpc_listen"`
	// MaxBodyBytes bounds a request as sent (default 16MiB).
	MaxBodyBytes pipeline.ByteSize `yaml:"max_body_bytes"`
	// MaxDecompressedBytes bounds what a gzip body inflates to (default
	// 64MiB).
	MaxDecompressedBytes pipeline.ByteSize `yaml:"max_decompressed_bytes"`
	// MaxConcurrentRequests are handled at once; more are answered 429
	// (default 64).
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// ReadTimeout bounds reading one request (default 30s).
	ReadTimeout time.Duration `yaml:"read_timeout"`
}

// DefaultConfig returns the defaults (off).
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 16 << 20, MaxDecompressedBytes: 64 << 20, MaxConcurrentRequests: 64, ReadTimeout: 30 * time.Second}
}

// Validate checks the section (named prefix in errors).
func (c *Config) Validate(prefix string) error {
	if c.HTTPListen == "" && c.GRPCListen == "" {
		return nil
	}
	if c.HTTPListen != "" {
		if err := pipeline.ValidateListen(prefix+".http_listen", c.HTTPListen); err != nil {
			return err
		}
	}
	if c.GRPCListen != "" {
		if err := pipeline.ValidateListen(prefix+".grpc_listen", c.GRPCListen); err != nil {
			return err
		}
	}
	if c.MaxBodyBytes < 1024 || c.MaxDecompressedBytes < c.MaxBodyBytes {
		return fmt.Errorf("%s: need max_body_bytes >= 1KiB and max_decompressed_bytes >= max_body_bytes", prefix)
	}
	if c.MaxConcurrentRequests < 1 || c.ReadTimeout <= 0 {
		return fmt.Errorf("%s: max_concurrent_requests must be at least 1 and read_timeout positive", prefix)
	}
	return nil
}

// Handler takes the records of one request and returns once they are
// durable (nil), or an error: pipeline.ErrFull (the buffer is full: 429), or
// another (503).
type Handler func(ctx context.Context, recs []Record) error

// Server serves OTLP over HTTP and/or gRPC.
type Server struct {
	cfg    Config
	handle Handler
	log    *slog.Logger
	sem    chan struct{}
	http   *http.Server
	httpLn net.Listener
	grpc   *grpc.Server
	grpcLn net.Listener
}

// Listen starts the listeners cfg names.
func Listen(cfg Config, handle Handler, log *slog.Logger) (*Server, error) {
	s := &Server{cfg: cfg, handle: handle, log: log, sem: make(chan struct{}, cfg.MaxConcurrentRequests)}
	if cfg.HTTPListen != "" {
		ln, err := net.Listen("tcp", cfg.HTTPListen)
		if err != nil {
			return nil, fmt.Errorf("http_listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/v1/logs", s.serveHTTP)
		s.httpLn = ln
		s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: cfg.ReadTimeout, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
		go s.http.Serve(ln)
	}
	if cfg.GRPCListen != "" {
		ln, err := net.Listen("tcp", cfg.GRPCListen)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("grpc_listen: %w", err)
		}
		s.grpcLn = ln
		s.grpc = grpc.NewServer(grpc.MaxRecvMsgSize(int(cfg.MaxDecompressedBytes)), grpc.MaxConcurrentStreams(uint32(cfg.MaxConcurrentRequests)),
			grpc.ConnectionTimeout(cfg.ReadTimeout))
		plogotlp.RegisterGRPCServer(s.grpc, &grpcLogs{s: s})
		go s.grpc.Serve(ln)
	}
	return s, nil
}

// HTTPAddr and GRPCAddr are the addresses served ("" when off).
func (s *Server) HTTPAddr() string { return addr(s.httpLn) }

// GRPCAddr is the gRPC address served ("" when off).
func (s *Server) GRPCAddr() string { return addr(s.grpcLn) }

func addr(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// Close stops both listeners, letting requests in progress finish (at most
// 10 s).
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if s.http != nil {
		err = s.http.Shutdown(ctx)
	}
	if s.grpc != nil {
		done := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.grpc.Stop()
		}
	}
	return err
}

// retryAfter is what a refused exporter is told to wait.
const retryAfter = 2 * time.Second

var errBusy = errors.New("too many requests in progress")

// export maps and stores one request's logs.
func (s *Server) export(ctx context.Context, req plogotlp.ExportRequest) error {
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		return errBusy
	}
	recs := Map(req.Logs())
	if len(recs) == 0 {
		return nil
	}
	return s.handle(ctx, recs)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an ExportLogsServiceRequest", http.StatusMethodNotAllowed)
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-protobuf" && ct != "application/json" {
		s.refuse(w, http.StatusUnsupportedMediaType, "media_type", fmt.Errorf("content type %q: application/x-protobuf or application/json", ct), r)
		return
	}
	wire := http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxBodyBytes))
	var body io.Reader = wire
	switch r.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(wire)
		if err != nil {
			s.refuse(w, http.StatusBadRequest, "malformed", fmt.Errorf("gzip: %w", err), r)
			return
		}
		body = io.LimitReader(zr, int64(s.cfg.MaxDecompressedBytes)+1)
	default:
		s.refuse(w, http.StatusUnsupportedMediaType, "media_type", fmt.Errorf("content encoding %q: gzip or none", r.Header.Get("Content-Encoding")), r)
		return
	}
	data, err := io.ReadAll(body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge) || int64(len(data)) > int64(s.cfg.MaxDecompressedBytes):
		s.refuse(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("body past max_body_bytes or max_decompressed_bytes"), r)
		return
	case err != nil:
		s.refuse(w, http.StatusBadRequest, "truncated", err, r)
		return
	}
	req := plogotlp.NewExportRequest()
	if ct == "application/json" {
		err = req.UnmarshalJSON(data)
	} else {
		err = req.UnmarshalProto(data)
	}
	if err != nil {
		s.refuse(w, http.StatusBadRequest, "malformed", err, r)
		return
	}
	if err := s.export(r.Context(), req); err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, pipeline.ErrFull) || errors.Is(err, errBusy) {
			code = http.StatusTooManyRequests
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter.Seconds())))
		http.Error(w, err.Error(), code)
		return
	}
	resp := plogotlp.NewExportResponse()
	var out []byte
	if ct == "application/json" {
		out, _ = resp.MarshalJSON()
	} else {
		out, _ = resp.MarshalProto()
	}
	w.Header().Set("Content-Type", ct)
	w.Write(out)
}

func (s *Server) refuse(w http.ResponseWriter, code int, reason string, err error, r *http.Request) {
	var from net.Addr
	if a, e := net.ResolveTCPAddr("tcp", r.RemoteAddr); e == nil {
		from = a
	}
	malformed.Refuse(s.log, "otlp", reason, err, from)
	http.Error(w, err.Error(), code)
}

// grpcLogs is the LogsService.
type grpcLogs struct {
	plogotlp.UnimplementedGRPCServer
	s *Server
}

func (g *grpcLogs) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	if err := g.s.export(ctx, req); err != nil {
		code := codes.Unavailable
		if errors.Is(err, pipeline.ErrFull) || errors.Is(err, errBusy) {
			code = codes.ResourceExhausted
		}
		st := status.New(code, err.Error())
		// RESOURCE_EXHAUSTED is retried only when the server says when.
		if d, e := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)}); e == nil {
			st = d
		}
		return plogotlp.NewExportResponse(), st.Err()
	}
	return plogotlp.NewExportResponse(), nil
}
