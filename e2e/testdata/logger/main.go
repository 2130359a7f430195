// Command logger is a stand-in application for the Docker tests: it prints
// JSON log lines that carry request ids to stdout, and one plain line to
// stderr, then exits.
package main

import (
	"fmt"
	"os"
	"strconv"
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
	fmt.Fprintln(os.Stderr, "plain text on stderr: shutting down")
}
