package mls

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The official MLS test vectors (github.com/mlswg/mls-implementations,
// test-vectors.md). TestVectors reads every <kind>.json or <kind>.json.gz in
// the folder named by $X0X_MLS_VECTORS, by default ../shared/testdata/mls
// relative to the module root, runs one sub-test per vector and logs, per
// file and per cipher suite, how many passed:
//
//	go test -run TestVectors -v ./core/mls/ | grep -E '^\s+vectors_test.go.*(passed|pending)'

// vectorRunners maps each vector kind this package implements to the
// function that checks one vector of it.
var vectorRunners = map[string]func(t *testing.T, raw json.RawMessage){
	"deserialization":                runDeserializationVector,
	"tree-math":                      runTreeMathVector,
	"crypto-basics":                  runCryptoBasicsVector,
	"secret-tree":                    runSecretTreeVector,
	"key-schedule":                   runKeyScheduleVector,
	"psk_secret":                     runPSKSecretVector,
	"messages":                       runMessagesVector,
	"transcript-hashes":              runTranscriptHashesVector,
	"message-protection":             runMessageProtectionVector,
	"welcome":                        runWelcomeVector,
	"tree-validation":                runTreeValidationVector,
	"tree-operations":                runTreeOperationsVector,
	"treekem":                        runTreeKEMVector,
	"passive-client-welcome":         runPassiveClientVector,
	"passive-client-handling-commit": runPassiveClientVector,
}

// pendingKinds lists the vector kinds this package does not implement yet,
// with the reason. Each is reported as a skipped sub-test naming it, so the
// remaining work stays visible. A kind leaves this table when it is
// implemented (and enters vectorRunners).
var pendingKinds = map[string]string{}

// vectorsDir returns the folder holding the vector files: $X0X_MLS_VECTORS,
// or ../shared/testdata/mls next to the module root.
func vectorsDir() (string, error) {
	if d := os.Getenv("X0X_MLS_VECTORS"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "testdata", "mls"), nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod above %s: cannot locate the MLS test vectors; set X0X_MLS_VECTORS", wd)
		}
	}
}

// vectorFiles maps each kind found in dir to its file. A missing or empty
// folder is an error: the vectors must be run, never skipped silently.
func vectorFiles(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("MLS test vectors folder %s is missing or unreadable (%w): "+
			"it should hold the official vectors (../shared/testdata/mls from the module root, see its README); "+
			"set X0X_MLS_VECTORS to the folder that holds them", dir, err)
	}
	files := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		var kind string
		switch {
		case e.IsDir():
			continue
		case strings.HasSuffix(name, ".json.gz"):
			kind = strings.TrimSuffix(name, ".json.gz")
		case strings.HasSuffix(name, ".json"):
			kind = strings.TrimSuffix(name, ".json")
		default:
			continue
		}
		if prev, ok := files[kind]; ok {
			return nil, fmt.Errorf("two files for vector kind %q: %s and %s", kind, prev, name)
		}
		files[kind] = filepath.Join(dir, name)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("MLS test vectors folder %s holds no <kind>.json or <kind>.json.gz files", dir)
	}
	return files, nil
}

// readVectorFile returns the JSON array of vectors in path.
func readVectorFile(path string) ([]json.RawMessage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	var vs []json.RawMessage
	dec := json.NewDecoder(r)
	if err := dec.Decode(&vs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return vs, nil
}

// tally counts passed and total vectors.
type tally struct{ passed, total int }

func TestVectors(t *testing.T) {
	dir, err := vectorsDir()
	if err != nil {
		t.Fatal(err)
	}
	files, err := vectorFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	kinds := make([]string, 0, len(files))
	for k := range files {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for kind := range vectorRunners {
		if _, pending := pendingKinds[kind]; pending {
			t.Errorf("vector kind %q is both implemented and pending", kind)
		}
		if _, ok := files[kind]; !ok {
			t.Errorf("no vectors file for implemented kind %q in %s", kind, dir)
		}
	}
	var summary []string
	for _, kind := range kinds {
		path := files[kind]
		run, implemented := vectorRunners[kind]
		if !implemented {
			t.Run(kind, func(t *testing.T) {
				if reason, pending := pendingKinds[kind]; pending {
					t.Skipf("pending vector kind %q: %s", kind, reason)
				}
				t.Fatalf("unknown vector kind %q (file %s): neither implemented nor listed in pendingKinds", kind, path)
			})
			if reason, pending := pendingKinds[kind]; pending {
				summary = append(summary, fmt.Sprintf("%-31s pending: %s", kind, reason))
			}
			continue
		}
		vs, err := readVectorFile(path)
		if err != nil {
			t.Errorf("reading %s: %v", path, err)
			continue
		}
		if len(vs) == 0 {
			t.Errorf("%s holds no vectors", path)
			continue
		}
		perSuite := map[uint16]*tally{}
		var all tally
		t.Run(kind, func(t *testing.T) {
			for i, raw := range vs {
				cs := vectorSuite(raw)
				name := fmt.Sprintf("%03d", i)
				if cs != 0 {
					name = fmt.Sprintf("suite%d/%03d", cs, i)
				}
				ok := t.Run(name, func(t *testing.T) { run(t, raw) })
				c := perSuite[cs]
				if c == nil {
					c = &tally{}
					perSuite[cs] = c
				}
				c.total++
				all.total++
				if ok {
					c.passed++
					all.passed++
				}
			}
		})
		summary = append(summary, fmt.Sprintf("%-31s %d/%d passed%s", kind, all.passed, all.total, suiteBreakdown(perSuite)))
	}
	for _, line := range summary {
		t.Log(line)
	}
}

// vectorSuite returns the vector's cipher_suite, or 0 if it has none.
func vectorSuite(raw json.RawMessage) uint16 {
	var v struct {
		CipherSuite uint16 `json:"cipher_suite"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return 0
	}
	return v.CipherSuite
}

func suiteBreakdown(m map[uint16]*tally) string {
	if len(m) == 1 && m[0] != nil {
		return ""
	}
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, int(k))
	}
	sort.Ints(keys)
	var b strings.Builder
	b.WriteString(" (")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		c := m[uint16(k)]
		fmt.Fprintf(&b, "suite %d: %d/%d", k, c.passed, c.total)
	}
	b.WriteString(")")
	return b.String()
}

// hexBytes is a byte string that JSON holds as hex (null: nil).
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// decodeVectorJSON unmarshals raw into v, rejecting unknown fields so that
// a vector field this runner ignores is noticed.
func decodeVectorJSON(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("vector JSON: %v", err)
	}
}

// vectorSuiteImpl returns the implementation of cs or fails the test.
func vectorSuiteImpl(t *testing.T, cs uint16) Suite {
	t.Helper()
	s, err := CipherSuite(cs).Suite()
	if err != nil {
		t.Fatalf("cipher suite %d: %v", cs, err)
	}
	return s
}

// wantBytes fails the test if got != want.
func wantBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got  %x\n want %x", what, got, want)
	}
}

// must fails the test on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestVectorsMissingFolder checks that a missing or empty vectors folder
// is an error with a clear message, not a silent pass.
func TestVectorsMissingFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "no-such-folder")
	_, err := vectorFiles(dir)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "X0X_MLS_VECTORS") {
		t.Fatalf("missing folder: got %v", err)
	}
	if _, err := vectorFiles(t.TempDir()); err == nil {
		t.Fatal("empty folder: no error")
	}
	t.Setenv("X0X_MLS_VECTORS", dir)
	if got, err := vectorsDir(); err != nil || got != dir {
		t.Fatalf("vectorsDir with X0X_MLS_VECTORS: %q, %v", got, err)
	}
}
