package shipper_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logweave/logweave/shipper"
)

// Each listening input type decodes its own keys over its defaults.
func TestListeningInputsConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shipper.yaml")
	os.WriteFile(path, []byte(`state: {path: `+filepath.Join(t.TempDir(), "state")+`}
inputs:
  - {type: file, paths: [/var/log/app/*.log]}
  - {type: gelf, listen: "127.0.0.1:12201"}
  - type: syslog
    listen: "127.0.0.1:5514"
    timezone: Europe/Berlin
    spool: {max_bytes: 64MiB}
  - type: forward
    listen: "127.0.0.1:24224"
    max_connections: 10
`), 0o644)
	cfg, err := shipper.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Inputs
	if in[0].Paths[0] != "/var/log/app/*.log" || in[1].GELF.Listen != "127.0.0.1:12201" {
		t.Fatalf("file or gelf input: %+v %+v", in[0].Paths, in[1].GELF)
	}
	if s := in[2].Syslog; s.Listen != "127.0.0.1:5514" || s.Timezone != "Europe/Berlin" || s.MaxMessageBytes != 64<<10 || in[2].Spool.MaxBytes != 64<<20 {
		t.Fatalf("syslog input: %+v spool %d", s, in[2].Spool.MaxBytes)
	}
	if f := in[3].Forward; f.Listen != "127.0.0.1:24224" || f.MaxConnections != 10 || f.ReadTimeout != 30*time.Second || in[3].Spool.MaxBytes != 256<<20 {
		t.Fatalf("forward input: %+v spool %d", f, in[3].Spool.MaxBytes)
	}
}
