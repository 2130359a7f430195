package cli

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Health asks the program's own listener (listen, as configured: a
// wildcard host means this machine) for /readyz and returns the exit code
// of a health check: 0 when it answers 200. It is what a container health
// check runs on images without a shell (`collector health -config F`).
// With TLS it skips verification: it is a loopback self-check.
func Health(program, listen string, useTLS bool) int {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s health: http.listen %q: %v\n", program, listen, err)
		return 2
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	scheme := "http"
	client := &http.Client{Timeout: 5 * time.Second}
	if useTLS {
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	url := scheme + "://" + net.JoinHostPort(host, port) + "/readyz"
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s health: %v\n", program, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Println(strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}
