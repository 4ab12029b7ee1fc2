package crdt

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// traceOp is one patch of an editing trace: at pos delete del code points,
// then insert ins.
type traceOp struct {
	pos, del int
	ins      string
}

type editTrace struct {
	start, end string
	ops        []traceOp
}

// tracePath locates the automerge-paper trace beside the repository
// checkout: <module root>/../shared/testdata/editing-traces/.
func tracePath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("module root (go.mod) not found")
		}
		dir = parent
	}
	return filepath.Join(dir, "..", "shared", "testdata", "editing-traces", "automerge-paper.json.gz"), nil
}

// loadTrace reads the trace, or skips tb with a clear message when the
// file is not there (CI places shared/ beside the checkout).
func loadTrace(tb testing.TB) *editTrace {
	tb.Helper()
	p, err := tracePath()
	if err != nil {
		tb.Skipf("editing trace not available: %v", err)
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		tb.Skipf("editing trace %s is absent: skipping (place shared/ beside the repository checkout)", p)
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	var raw struct {
		StartContent string `json:"startContent"`
		EndContent   string `json:"endContent"`
		Txns         []struct {
			Patches [][3]json.RawMessage `json:"patches"`
		} `json:"txns"`
	}
	if err := json.NewDecoder(zr).Decode(&raw); err != nil {
		tb.Fatalf("decode %s: %v", p, err)
	}
	t := &editTrace{start: raw.StartContent, end: raw.EndContent}
	for i, txn := range raw.Txns {
		for _, p := range txn.Patches {
			var op traceOp
			if err := json.Unmarshal(p[0], &op.pos); err != nil {
				tb.Fatalf("txn %d: position: %v", i, err)
			}
			if err := json.Unmarshal(p[1], &op.del); err != nil {
				tb.Fatalf("txn %d: delete count: %v", i, err)
			}
			if err := json.Unmarshal(p[2], &op.ins); err != nil {
				tb.Fatalf("txn %d: text: %v", i, err)
			}
			t.ops = append(t.ops, op)
		}
	}
	return t
}

// replay applies the trace to r through the index-based API. If sink is
// not nil it receives every delta. It returns the number of single-element
// operations performed.
func replay(r *RGA[rune], t *editTrace, sink func(*RGADelta[rune])) (int, error) {
	n := 0
	for _, r0 := range t.start {
		_, d, err := r.InsertAt(r.Len(), r0)
		if err != nil {
			return n, err
		}
		if sink != nil {
			sink(d)
		}
	}
	for i, op := range t.ops {
		for k := 0; k < op.del; k++ {
			d, err := r.RemoveAt(op.pos)
			if err != nil {
				return n, fmt.Errorf("op %d: %w", i, err)
			}
			n++
			if sink != nil {
				sink(d)
			}
		}
		pos := op.pos
		for _, c := range op.ins {
			_, d, err := r.InsertAt(pos, c)
			if err != nil {
				return n, fmt.Errorf("op %d: %w", i, err)
			}
			pos++
			n++
			if sink != nil {
				sink(d)
			}
		}
	}
	return n, nil
}

func rgaText(r *RGA[rune]) string {
	buf := make([]byte, 0, r.Len())
	for _, c := range r.All() {
		buf = utf8.AppendRune(buf, c)
	}
	return string(buf)
}

// TestRGATraceReplay replays the automerge-paper trace (259,778 edits) and
// checks the document equals the trace's endContent; then replays the
// deltas on a second replica, and ships the full state (through the wire
// codec) to a third, which must reach the same text.
func TestRGATraceReplay(t *testing.T) {
	tr := loadTrace(t)
	if len(tr.ops) < 100000 {
		t.Fatalf("trace has %d operations, want at least 100,000", len(tr.ops))
	}
	a := NewRGA[rune](rid(1), RGAOptions{})
	var deltas []*RGADelta[rune]
	n, err := replay(a, tr, func(d *RGADelta[rune]) { deltas = append(deltas, d) })
	if err != nil {
		t.Fatal(err)
	}
	if n != 259778 {
		t.Errorf("replayed %d single-character operations, want 259778", n)
	}
	if got := rgaText(a); got != tr.end {
		t.Fatalf("final text differs from endContent: got %d chars, want %d", len(got), len(tr.end))
	}
	checkRGAInvariants(t, a)

	b := NewRGA[rune](rid(2), RGAOptions{})
	for i, d := range deltas {
		if err := b.Merge(d); err != nil {
			t.Fatalf("merge delta %d: %v", i, err)
		}
	}
	if got := rgaText(b); got != tr.end {
		t.Fatal("replica fed the deltas differs from endContent")
	}
	checkRGAInvariants(t, b)

	enc, err := a.State().MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	var st RGADelta[rune]
	if err := st.UnmarshalCBOR(enc); err != nil {
		t.Fatal(err)
	}
	c := NewRGA[rune](rid(3), RGAOptions{})
	if err := c.Merge(&st); err != nil {
		t.Fatal(err)
	}
	if got := rgaText(c); got != tr.end {
		t.Fatal("replica fed the encoded full state differs from endContent")
	}
	checkRGAInvariants(t, c)
	sameState(t, a, b, c)
	t.Logf("full state: %d bytes on the wire for %d elements", len(enc), len(tr.end))
}
