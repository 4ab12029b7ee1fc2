// Command benchjson turns `go test -bench` output on stdin into one JSON
// object per figure on stdout: {"name": ..., "value": ..., "unit": ...}.
// The name is "<package>/<benchmark>" with the GOMAXPROCS suffix removed;
// every reported metric of a benchmark (ns/op, B/op, MB/s and custom
// b.ReportMetric units) becomes its own object. It exits non-zero if the
// input contains a failure or no benchmark at all, so `make bench` fails
// loudly instead of printing nothing.
package main

import (
	"github.com/saorsa-labs/x0x-go/internal/measure"

	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

var procSuffix = regexp.MustCompile(`-\d+$`)

func main() {
	n, err := convert(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchjson:", err)
		os.Exit(1)
	}
	if n == 0 {
		fmt.Fprintln(os.Stderr, "benchjson: no benchmark results in input")
		os.Exit(1)
	}
}

// convert reads benchmark output and writes JSON figures; it returns how
// many figures it wrote.
func convert(r io.Reader, w io.Writer) (int, error) {
	enc := json.NewEncoder(w)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	pkg, count := "", 0
	var failed []string
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 2 && fields[0] == "pkg:":
			pkg = fields[1][strings.LastIndex(fields[1], "/")+1:]
		case strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "FAIL"):
			failed = append(failed, line)
		case strings.HasPrefix(line, "Benchmark") && len(fields) >= 4:
			if _, err := strconv.Atoi(fields[1]); err != nil {
				continue // a log line that happens to start with "Benchmark"
			}
			name := procSuffix.ReplaceAllString(fields[0], "")
			if pkg != "" {
				name = pkg + "/" + name
			}
			for i := 2; i+1 < len(fields); i += 2 {
				v, err := strconv.ParseFloat(fields[i], 64)
				if err != nil {
					continue
				}
				if err := enc.Encode(measure.Figure{Name: name, Value: v, Unit: fields[i+1]}); err != nil {
					return count, err
				}
				count++
			}
		}
	}
	if err := sc.Err(); err != nil {
		return count, err
	}
	if len(failed) > 0 {
		return count, fmt.Errorf("benchmarks failed: %s", strings.Join(failed, "; "))
	}
	return count, nil
}
