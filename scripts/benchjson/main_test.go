package main

import (
	"github.com/saorsa-labs/x0x-go/internal/measure"

	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestConvert(t *testing.T) {
	in := `goos: linux
pkg: github.com/saorsa-labs/x0x-go/core/transport
BenchmarkHandshake/x0x-2         	     100	  2500000 ns/op	  1234 B/op	  2.50 ms/handshake
BenchmarkThroughput/1KiB-2       	    1000	    10000 ns/op	 102.40 MB/s
PASS
`
	var out bytes.Buffer
	n, err := convert(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Fatalf("n = %d, want 5:\n%s", n, out.String())
	}
	dec := json.NewDecoder(&out)
	var first measure.Figure
	if err := dec.Decode(&first); err != nil {
		t.Fatal(err)
	}
	if first.Name != "transport/BenchmarkHandshake/x0x" || first.Value != 2500000 || first.Unit != "ns/op" {
		t.Fatalf("first = %+v", first)
	}
}

func TestConvertFailure(t *testing.T) {
	_, err := convert(strings.NewReader("--- FAIL: BenchmarkX\nFAIL\n"), &bytes.Buffer{})
	if err == nil {
		t.Fatal("failure not reported")
	}
}
