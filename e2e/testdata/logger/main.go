// Command logger is a stand-in application for the Docker tests: it prints
// JSON log lines that carry request ids to stdout, and one plain line to
// stderr, then exits.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	n := 50
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	for i := 0; i < n; i++ {
		fmt.Printf(`{"time":%q,"level":"info","service":"orders","msg":"order %d placed","request_id":"req-%d"}`+"\n",
			time.Now().UTC().Format(time.RFC3339Nano), i, i/5)
		time.Sleep(2 * time.Millisecond)
	}
	if len(os.Args) > 2 && os.Args[2] == "long" {
		// Longer than Docker's 16 KiB line limit: the runtime splits it.
		fmt.Printf(`{"level":"warn","msg":"big payload","request_id":"req-long","blob":"%s"}`+"\n", strings.Repeat("x", 40000))
	}
	fmt.Fprintln(os.Stderr, "plain text on stderr: shutting down")
}
