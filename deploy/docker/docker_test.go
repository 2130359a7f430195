// Package docker_test checks the two Dockerfiles: the multi-stage one for
// users with a registry and the scratch one `make images` and the
// container tests use must give the same images (entrypoint, default
// command, user, ports), so every command in the README, compose and the
// Kubernetes manifests works with either; and the version is injected
// into every binary.
package docker_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// stage is one FROM ... AS name of a Dockerfile, its instructions by
// keyword (continuation lines joined).
type stage map[string][]string

func parse(t *testing.T, path string) map[string]stage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile(`\\\n`).ReplaceAllString(string(data), " ")
	stages := map[string]stage{}
	var cur stage
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kw, rest, _ := strings.Cut(line, " ")
		kw = strings.ToUpper(kw)
		if kw == "FROM" {
			f := strings.Fields(rest)
			if len(f) != 3 || !strings.EqualFold(f[1], "AS") {
				t.Fatalf("%s: every stage is named (FROM image AS name): %q", path, line)
			}
			cur = stage{"FROM": {f[0]}}
			stages[f[2]] = cur
			continue
		}
		if cur == nil {
			t.Fatalf("%s: %q before FROM", path, line)
		}
		cur[kw] = append(cur[kw], strings.TrimSpace(rest))
	}
	return stages
}

// last is the instruction in effect: a stage's own, else its base's.
func last(stages map[string]stage, name, kw string) string {
	for s := stages[name]; s != nil; s = stages[s["FROM"][0]] {
		if v := s[kw]; len(v) > 0 {
			return v[len(v)-1]
		}
	}
	return ""
}

func TestDockerfilesBuildTheSameImages(t *testing.T) {
	multi := parse(t, "Dockerfile")
	scratch := parse(t, "Dockerfile.scratch")
	for _, name := range []string{"collector", "shipper", "demo-service"} {
		if multi[name] == nil || scratch[name] == nil {
			t.Fatalf("stage %s: in Dockerfile %v, in Dockerfile.scratch %v", name, multi[name] != nil, scratch[name] != nil)
		}
		for _, kw := range []string{"ENTRYPOINT", "CMD", "USER", "EXPOSE"} {
			if a, b := last(multi, name, kw), last(scratch, name, kw); a != b {
				t.Errorf("%s %s: Dockerfile %q, Dockerfile.scratch %q", name, kw, a, b)
			}
		}
		if want := `["/` + name + `"]`; last(multi, name, "ENTRYPOINT") != want {
			t.Errorf("%s: ENTRYPOINT %s, want %s", name, last(multi, name, "ENTRYPOINT"), want)
		}
		if u := last(multi, name, "USER"); u == "" || strings.HasPrefix(u, "0") || strings.HasPrefix(u, "root") {
			t.Errorf("%s runs as %q, want a non-root user", name, u)
		}
		// The final image is minimal: scratch (or its own base on scratch).
		root := name
		for multi[root] != nil && multi[root]["FROM"][0] != "scratch" {
			root = multi[root]["FROM"][0]
		}
		if multi[root] == nil {
			t.Errorf("%s is not built on scratch", name)
		}
	}
	// The builder compiles each binary statically, with its version.
	var builds []string
	for _, s := range multi {
		for _, run := range s["RUN"] {
			for _, cmd := range strings.Split(run, "&&") {
				if strings.Contains(cmd, "go build") {
					builds = append(builds, strings.TrimSpace(cmd))
				}
			}
		}
	}
	for _, name := range []string{"collector", "shipper", "demo-service"} {
		i := slices.IndexFunc(builds, func(b string) bool { return strings.HasSuffix(b, "./cmd/"+name) })
		if i < 0 {
			t.Errorf("no go build of ./cmd/%s", name)
			continue
		}
		if b := builds[i]; !strings.Contains(b, "CGO_ENABLED=0") || !strings.Contains(b, "-X main.version=${VERSION}") {
			t.Errorf("%s is not built static with its version: %s", name, b)
		}
		src, err := os.ReadFile("../../cmd/" + name + "/main.go")
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^var version = `).Match(src) {
			t.Errorf("cmd/%s has no version variable for -X main.version", name)
		}
	}
}
