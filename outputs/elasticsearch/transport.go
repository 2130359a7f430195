package elasticsearch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// timeoutTransport ends every request after timeout, the answer's body
// included, unless the caller's context ends it sooner: a cluster (or a
// proxy) that accepts a request and never answers fails it instead of
// stalling the indexer, and the failure counts for the circuit breaker.
type timeoutTransport struct {
	base    http.RoundTripper
	timeout time.Duration
}

func (t *timeoutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeoutCause(req.Context(), t.timeout, errRequestTimeout{t.timeout})
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		if cause := context.Cause(ctx); errors.As(cause, new(errRequestTimeout)) {
			return nil, cause
		}
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// errRequestTimeout is the error of a request that got no (whole) answer
// within elasticsearch.request_timeout.
type errRequestTimeout struct{ d time.Duration }

func (e errRequestTimeout) Error() string {
	return fmt.Sprintf("no answer within elasticsearch.request_timeout (%s)", e.d)
}

// cancelBody releases the request's timer when the answer is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// newTransport is http.DefaultTransport's settings with the private CA, if
// any, as the roots.
func newTransport(caPEM []byte) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caPEM != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("elasticsearch.ca_cert: no PEM certificate in the file")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr, nil
}
