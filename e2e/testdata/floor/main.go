// Command floor is the end-to-end benchmark's floor: the least work a log
// pipeline does on the same file, in one Go process. It reads the file,
// validates each line as JSON with gjson, picks five fields and writes them
// as NDJSON (a line that is not JSON is written as its message). What
// shipper and collector spend is compared with what this spends in the
// same run.
//
//	floor IN OUT
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"

	"github.com/tidwall/gjson"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: floor IN OUT")
		os.Exit(2)
	}
	in, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := os.Create(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	w := bufio.NewWriterSize(out, 1<<20)
	fields := []string{"time", "level", "service", "msg", "request_id"}
	var buf []byte
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		buf = buf[:0]
		if gjson.ValidBytes(line) {
			buf = append(buf, '{')
			for i, v := range gjson.GetManyBytes(line, fields...) {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = strconv.AppendQuote(append(strconv.AppendQuote(buf, fields[i]), ':'), v.String())
			}
			buf = append(buf, '}', '\n')
		} else {
			buf = append(strconv.AppendQuote(append(buf, `{"message":`...), string(line)), '}', '\n')
		}
		w.Write(buf)
		n++
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out.Sync()
	out.Close()
	fmt.Println(n)
}
