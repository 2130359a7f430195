package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/inputs/forward"
	"github.com/logweave/logweave/inputs/gelf"
	"github.com/logweave/logweave/inputs/syslog"
	"github.com/logweave/logweave/inputs/tail"
	"github.com/logweave/logweave/pipeline"
	"github.com/logweave/logweave/shipper"
)

// yamlKeys lists the dotted YAML keys of a config struct.
func yamlKeys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() == "time" {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if opts == "inline" {
			keys = append(keys, yamlKeys(f.Type, prefix)...)
			continue
		}
		if name == "" {
			continue
		}
		key := prefix + name
		keys = append(keys, key)
		keys = append(keys, yamlKeys(f.Type, key+".")...)
	}
	return keys
}

// The README's configuration reference must name every key the code
// accepts, and its examples must load.
func TestReadmeConfigReferenceIsComplete(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := func(heading string) string {
		s := string(readme)
		i := strings.Index(s, heading)
		if i < 0 {
			t.Fatalf("README has no %q section", heading)
		}
		s = s[i:]
		start := strings.Index(s, "```yaml\n") + len("```yaml\n")
		end := strings.Index(s[start:], "```")
		return s[start : start+end]
	}
	var blocks []string
	for _, c := range []struct {
		heading string
		typ     reflect.Type
		cfg     pipeline.Validator
	}{
		{"### collector.yaml", reflect.TypeOf(collector.Config{}), collector.DefaultConfig()},
		{"### shipper.yaml", reflect.TypeOf(shipper.Config{}), shipper.DefaultConfig()},
	} {
		yml := block(c.heading)
		for _, key := range yamlKeys(c.typ, "") {
			last := key[strings.LastIndex(key, ".")+1:]
			if !strings.Contains(yml, last+":") {
				t.Errorf("%s: key %s is not documented", c.heading, key)
			}
		}
		if err := pipeline.ParseConfig([]byte(yml), c.cfg); err != nil {
			t.Errorf("%s: the documented example does not load: %v", c.heading, err)
		}
		blocks = append(blocks, yml)
	}
	// As a user would check them: the real `validate` on each block as shown.
	collectorBin, shipperBin := buildBinaries(t)
	dir := t.TempDir()
	for i, bin := range []string{collectorBin, shipperBin} {
		f := writeFile(t, dir, filepath.Base(bin)+".yaml", blocks[i])
		cmd := exec.Command(bin, "validate", "-c", f)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "configuration ok") {
			t.Errorf("%s validate on the README's block: %v\n%s", filepath.Base(bin), err, out)
		}
	}
	// The values shown are the defaults.
	col := collector.DefaultConfig()
	pipeline.ParseConfig([]byte(block("### collector.yaml")), col)
	if len(col.Elasticsearch.URLs) == 0 {
		col.Elasticsearch.URLs = nil // documented as []
	}
	if len(col.Kafka.Brokers) == 0 {
		col.Kafka.Brokers = nil
	}
	if !reflect.DeepEqual(col, collector.DefaultConfig()) {
		t.Errorf("collector.yaml in the README differs from the defaults:\n%+v\n%+v", col, collector.DefaultConfig())
	}
	sh := shipper.DefaultConfig()
	pipeline.ParseConfig([]byte(block("### shipper.yaml")), sh)
	if len(sh.Inputs) != 4 || sh.Inputs[0].Type != "file" || sh.Inputs[1].Type != "gelf" || sh.Inputs[2].Type != "syslog" || sh.Inputs[3].Type != "forward" {
		t.Fatalf("shipper.yaml example should have a file, a gelf, a syslog and a forward input")
	}
	// The keys of the syslog and forward inputs (decoded by type) are
	// shown too, with their defaults.
	shipperBlock := block("### shipper.yaml")
	for _, typ := range []reflect.Type{reflect.TypeOf(syslog.Config{}), reflect.TypeOf(forward.Config{})} {
		for _, key := range yamlKeys(typ, "") {
			if last := key[strings.LastIndex(key, ".")+1:]; !strings.Contains(shipperBlock, last+":") {
				t.Errorf("shipper.yaml: key %s of a %s input is not documented", key, typ)
			}
		}
	}
	sl, fw := sh.Inputs[2].Syslog, sh.Inputs[3].Forward
	sl.Listen, fw.Listen = "", ""
	if !reflect.DeepEqual(sl, syslog.DefaultConfig()) || !reflect.DeepEqual(fw, forward.DefaultConfig()) ||
		sh.Inputs[2].Spool != shipper.DefaultSpoolConfig() || sh.Inputs[3].Spool != shipper.DefaultSpoolConfig() {
		t.Errorf("documented syslog or forward input differs from the defaults:\n%+v\n%+v", sl, fw)
	}
	in := sh.Inputs[0].Config
	in.Paths = nil
	if !reflect.DeepEqual(in, tail.DefaultConfig()) {
		t.Errorf("documented file input differs from the defaults:\n%+v\n%+v", in, tail.DefaultConfig())
	}
	g := sh.Inputs[1].GELF
	g.Listen = ""
	if !reflect.DeepEqual(g, gelf.DefaultConfig()) || sh.Inputs[1].Spool != shipper.DefaultSpoolConfig() {
		t.Errorf("documented gelf input differs from the defaults:\n%+v %+v\n%+v %+v", g, sh.Inputs[1].Spool, gelf.DefaultConfig(), shipper.DefaultSpoolConfig())
	}
	sh.Inputs = nil
	if !reflect.DeepEqual(sh, shipper.DefaultConfig()) {
		t.Errorf("shipper.yaml in the README differs from the defaults:\n%+v\n%+v", sh, shipper.DefaultConfig())
	}
}
