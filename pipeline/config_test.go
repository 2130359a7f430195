package pipeline_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/logweave/logweave/pipeline"
)

type testConfig struct {
	HTTP struct {
		Listen string `yaml:"listen"`
	} `yaml:"http"`
	Linger time.Duration     `yaml:"linger"`
	Size   pipeline.ByteSize `yaml:"size"`
	URLs   []string          `yaml:"urls"`
}

func (c *testConfig) Validate() error {
	if c.HTTP.Listen == "" {
		return errors.New("http.listen: must not be empty")
	}
	return nil
}

func defaults() *testConfig {
	c := &testConfig{}
	c.HTTP.Listen = "127.0.0.1:8080"
	return c
}

func TestParseConfig(t *testing.T) {
	t.Setenv("LW_HOST", "10.1.2.3")
	c := defaults()
	err := pipeline.ParseConfig([]byte("http:\n  listen: \"${LW_HOST}:${LW_PORT:-9000}\"\nlinger: 250ms\nsize: 64MiB\nurls: [a, b]\n"), c)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Listen != "10.1.2.3:9000" || c.Linger != 250*time.Millisecond || c.Size != 64<<20 || len(c.URLs) != 2 {
		t.Fatalf("got %+v", c)
	}
}

func TestParseConfigEmptyFileKeepsDefaults(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "---\n"} {
		c := defaults()
		if err := pipeline.ParseConfig([]byte(in), c); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if c.HTTP.Listen != "127.0.0.1:8080" {
			t.Fatalf("defaults lost: %+v", c)
		}
	}
}

func TestParseConfigErrorsNameKeyAndLine(t *testing.T) {
	cases := map[string][]string{
		"http:\n  listen: x\n  lisen: y\n":   {"lisen", "3"},
		"urls: [a]\nbogus: 1\n":              {"bogus", "2"},
		"http:\n  listen: ${NOPE_NOT_SET}\n": {"NOPE_NOT_SET", "line 2"},
		"size: lots\n":                       {"size", "lots"},
		"http:\n  listen: \"\"\n":            {"http.listen"},
	}
	for in, wants := range cases {
		err := pipeline.ParseConfig([]byte(in), defaults())
		if err == nil {
			t.Errorf("%q: want error", in)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not mention %q", in, err, w)
			}
		}
	}
}

func TestExpandEnvEscape(t *testing.T) {
	got, err := pipeline.ExpandEnv([]byte("a: $${HOME} ${X:-d}"), func(string) (string, bool) { return "", false })
	if err != nil || string(got) != "a: ${HOME} d" {
		t.Fatalf("got %q %v", got, err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://user:s3cret@es:9200/": "http://user:xxxxx@es:9200/",
		"https://es:9200":             "https://es:9200",
		"http://user@es:9200":         "http://user@es:9200",
	} {
		if got := pipeline.RedactURL(in); got != want || strings.Contains(got, "s3cret") {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
