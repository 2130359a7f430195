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

type inputCfg struct {
	Type  string   `yaml:"type"`
	Paths []string `yaml:"paths"`
	Port  int      `yaml:"port"`
}

func (*inputCfg) ConfigVariants() (string, map[string]any) {
	return "type", map[string]any{
		"file": struct {
			Type  string   `yaml:"type"`
			Paths []string `yaml:"paths"`
		}{},
		"net": struct {
			Type string `yaml:"type"`
			Port int    `yaml:"port"`
		}{},
	}
}

type bigConfig struct {
	Name     string            `yaml:"name"`
	Every    time.Duration     `yaml:"every"`
	Max      pipeline.ByteSize `yaml:"max"`
	On       bool              `yaml:"on"`
	Count    int               `yaml:"count"`
	Password string            `yaml:"password"`
	Inputs   []inputCfg        `yaml:"inputs"`
	Labels   map[string]string `yaml:"labels"`
}

func (c *bigConfig) Validate() error {
	if c.Count > 10 {
		return errors.New("count: must be at most 10")
	}
	return nil
}

// Every problem is found in one pass, each on its line and key path.
func TestConfigCheckerFindsEverythingAtOnce(t *testing.T) {
	in := `name: x
every: 1d
max: lots
on: maybe
count: [1]
bogus: 1
inputs:
  - type: file
    paths: [a]
    port: 9
  - {type: net, port: many, paths: [b]}
labels: {a: b, c: [d]}
`
	err := pipeline.ParseConfig([]byte(in), &bigConfig{})
	var ce pipeline.ConfigErrors
	if !errors.As(err, &ce) {
		t.Fatalf("%T %v", err, err)
	}
	want := []string{
		`line 2: every: "1d" is not a duration`,
		`line 3: max: "lots" is not a size`,
		`line 4: on: "maybe" is not a boolean`,
		`line 5: count: a sequence is not a whole number`,
		`line 6: bogus: unknown key`,
		`line 10: inputs[0].port: not a key of a file input`,
		`line 11: inputs[1].port: "many" is not a whole number`,
		`line 11: inputs[1].paths: not a key of a net input`,
		`line 12: labels.c: a sequence is not text`,
	}
	if len(ce) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(ce), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

// Anchors, aliases, merge keys and tags are YAML users write; a Validate
// error is placed on its key's line; an excerpt masks a secret and shows
// the line before ${VAR} expansion.
func TestConfigCheckerPlacesAndMasks(t *testing.T) {
	if err := pipeline.ParseConfig([]byte("inputs:\n  - &f {type: file, paths: [a]}\n  - *f\nname: !!str 5\n"), &bigConfig{}); err != nil {
		t.Errorf("anchors and tags: %v", err)
	}
	err := pipeline.ParseConfig([]byte("name: x\n\ncount: 11\n"), &bigConfig{})
	if err == nil || err.Error() != "line 3: count: must be at most 10" {
		t.Errorf("Validate's error not placed: %v", err)
	}
	lookup := func(k string) (string, bool) { return "s3cr3t-from-env", true }
	err = pipeline.ParseConfigEnv([]byte("name: ${NAME}\npassword: \"literal-s3cr3t\nevery: 1s\n"), &bigConfig{}, lookup)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("a syntax error shows a secret: %v", err)
	}
	err = pipeline.ParseConfigEnv([]byte("name: ${NAME}\nevery: [\n"), &bigConfig{}, lookup)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("an excerpt shows an expanded variable: %v", err)
	}
	err = pipeline.ParseConfigEnv([]byte("password: [${NAME}]\n"), &bigConfig{}, lookup)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "password") {
		t.Errorf("a shape error under a secret key shows it: %v", err)
	}
}

// Comments are not expanded: a commented-out line naming a variable that is
// not set loads. Values are, also where a # is text (in quotes, in a URL,
// in a block scalar), and an unset variable in a value is still an error
// on its line.
func TestExpandEnvLeavesComments(t *testing.T) {
	env := map[string]string{"X": "x"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	in := "# password: ${UNSET}\n" +
		"a: 1 # was ${UNSET}\n" +
		"  # indented ${UNSET}\n" +
		"msg: don't # ${UNSET}\n" +
		"q: \"x #${X}\" # ${UNSET}\n" +
		"s: 'it''s #${X}' # ${UNSET}\n" +
		"url: http://h/#${X}\n" +
		"b: |\n  # ${X}\n\n  y ${X}\n" +
		"c: ${X} # ${UNSET}\n"
	want := "# password: ${UNSET}\n" +
		"a: 1 # was ${UNSET}\n" +
		"  # indented ${UNSET}\n" +
		"msg: don't # ${UNSET}\n" +
		"q: \"x #x\" # ${UNSET}\n" +
		"s: 'it''s #x' # ${UNSET}\n" +
		"url: http://h/#x\n" +
		"b: |\n  # x\n\n  y x\n" +
		"c: x # ${UNSET}\n"
	got, err := pipeline.ExpandEnv([]byte(in), lookup)
	if err != nil || string(got) != want {
		t.Fatalf("got %q, %v\nwant %q", got, err, want)
	}
	_, err = pipeline.ExpandEnv([]byte("# ${UNSET}\na: 1\nb: ${UNSET} # x\n"), lookup)
	var ce pipeline.ConfigErrors
	if !errors.As(err, &ce) || ce[0].Line != 3 || !strings.Contains(ce[0].Msg, "UNSET is not set") {
		t.Fatalf("an unset variable in a value: %v", err)
	}
}
