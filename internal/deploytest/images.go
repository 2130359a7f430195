package deploytest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// DockerAvailable reports whether a Docker daemon answers (the project's
// machines and CI run one; nothing can be pulled there).
func DockerAvailable() bool { return exec.Command("docker", "info").Run() == nil }

// BuildImages builds the collector, shipper and demo-service images as
// `make images` does: static binaries on scratch from one context with
// deploy/docker/Dockerfile.scratch, one --target each (Docker's classic
// builder builds every stage before the target, so the context holds all
// three binaries). root is the repository; the images are removed when
// the test ends.
func BuildImages(t testing.TB, root string) (collector, shipper, demoService string) {
	t.Helper()
	dir := t.TempDir()
	names := []string{"collector", "shipper", "demo-service"}
	for _, name := range names {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, out)
		}
	}
	os.MkdirAll(filepath.Join(dir, "state"), 0o755)
	tags := make([]string, len(names))
	for i, name := range names {
		tags[i] = fmt.Sprintf("logweave-test-%s:%d", name, time.Now().UnixNano())
		out, err := exec.Command("docker", "build", "-q", "-f", filepath.Join(root, "deploy/docker/Dockerfile.scratch"), "--target", name, "-t", tags[i], dir).CombinedOutput()
		if err != nil {
			t.Fatalf("docker build --target %s: %v\n%s", name, err, out)
		}
		t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tags[i]).Run() })
	}
	return tags[0], tags[1], tags[2]
}

// Request POSTs to url with a fresh X-Request-ID (as the gateway stamps
// it) until an answer comes, for up to a minute while the containers
// start, and returns the id.
func Request(t testing.TB, url string) string {
	t.Helper()
	id := fmt.Sprintf("%032x", time.Now().UnixNano())
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(250 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodPost, url, nil)
		req.Header.Set("X-Request-ID", id)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return id
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within a minute: %v", url, err)
		}
	}
}
