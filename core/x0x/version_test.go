package x0x

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestVersionAgrees checks the one version number of the project: the
// VERSION file, x0x.Version, the C header's ABI version (which must equal
// the version's MAJOR.MINOR), every npm package.json (the version and the
// pins of the @x0x/* packages it depends on, and a package-lock.json beside
// it), and the Python distribution (pyproject.toml and x0x.__version__).
// The top-level package.json and pyproject.toml are checked when they exist.
func TestVersionAgrees(t *testing.T) {
	root := repoRoot(t)
	rel := func(p string) string {
		r, err := filepath.Rel(root, p)
		if err != nil {
			return p
		}
		return r
	}

	raw, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		t.Fatalf("VERSION: %v", err)
	}
	want := strings.TrimSpace(string(raw))
	m := regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)$`).FindStringSubmatch(want)
	if m == nil {
		t.Fatalf("VERSION is %q, want MAJOR.MINOR.PATCH (digits only, so that npm and PyPI spell it the same)", want)
	}
	if Version != want {
		t.Errorf("x0x.Version (core/x0x/version.go) is %q, VERSION is %q", Version, want)
	}

	// The C ABI: MAJOR.MINOR of the version.
	hdr, err := os.ReadFile(filepath.Join(root, "include", "x0x.h"))
	if err != nil {
		t.Fatalf("include/x0x.h: %v", err)
	}
	abi := func(name string) string {
		mm := regexp.MustCompile(`(?m)^#define\s+` + name + `\s+(\d+)\s*$`).FindSubmatch(hdr)
		if mm == nil {
			t.Fatalf("include/x0x.h: no #define %s", name)
		}
		return string(mm[1])
	}
	if major, minor := abi("X0X_ABI_VERSION_MAJOR"), abi("X0X_ABI_VERSION_MINOR"); major != m[1] || minor != m[2] {
		t.Errorf("include/x0x.h declares ABI %s.%s, but VERSION %s has MAJOR.MINOR %s.%s (they must be equal: bump VERSION with the ABI)",
			major, minor, want, m[1], m[2])
	}

	// npm: the main package(s) and the per-platform packages.
	var pkgs []string
	for _, p := range []string{"package.json", "bindings/node/package.json"} {
		if exists(t, filepath.Join(root, p)) {
			pkgs = append(pkgs, filepath.Join(root, p))
		}
	}
	if !exists(t, filepath.Join(root, "bindings/node/package.json")) {
		t.Errorf("bindings/node/package.json is missing")
	}
	platforms := 0
	for _, pattern := range []string{"npm/*/package.json", "bindings/node/npm/*/package.json"} {
		found, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		platforms += len(found)
		pkgs = append(pkgs, found...)
	}
	if platforms == 0 {
		t.Errorf("no per-platform npm package (npm/*/package.json or bindings/node/npm/*/package.json)")
	}
	for _, p := range pkgs {
		for _, problem := range checkPackageJSON(p, want) {
			t.Errorf("%s: %s", rel(p), problem)
		}
		lock := filepath.Join(filepath.Dir(p), "package-lock.json")
		if exists(t, lock) {
			for _, problem := range checkPackageLock(lock, want) {
				t.Errorf("%s: %s", rel(lock), problem)
			}
		}
	}

	// Python: the distribution's metadata and the module's __version__.
	if !exists(t, filepath.Join(root, "bindings/python/pyproject.toml")) {
		t.Errorf("bindings/python/pyproject.toml is missing")
	}
	for _, p := range []string{"pyproject.toml", "bindings/python/pyproject.toml"} {
		path := filepath.Join(root, p)
		if !exists(t, path) {
			continue
		}
		if problem := checkPyproject(path, want); problem != "" {
			t.Errorf("%s: %s", p, problem)
		}
	}
	initPy := filepath.Join(root, "bindings/python/src/x0x/__init__.py")
	src, err := os.ReadFile(initPy)
	if err != nil {
		t.Fatalf("%s: %v", rel(initPy), err)
	}
	vm := regexp.MustCompile(`(?m)^__version__\s*(?::\s*str\s*)?=\s*["']([^"']*)["']`).FindSubmatch(src)
	switch {
	case vm == nil:
		t.Errorf("%s: no __version__", rel(initPy))
	case string(vm[1]) != want:
		t.Errorf("%s: __version__ is %q, VERSION is %q", rel(initPy), vm[1], want)
	}
}

// repoRoot is the directory holding go.mod, above the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err == nil {
		return true
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return false
}

// checkPackageJSON returns what disagrees with want in one package.json: its
// version, and the exact pins of the x0x packages it depends on (a range
// would let npm pair the JavaScript of one release with the addon of another).
func checkPackageJSON(path, want string) []string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	var pkg struct {
		Name    string            `json:"name"`
		Version string            `json:"version"`
		Deps    map[string]string `json:"dependencies"`
		DepsOpt map[string]string `json:"optionalDependencies"`
		DepsDev map[string]string `json:"devDependencies"`
		DepsPer map[string]string `json:"peerDependencies"`
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		return []string{fmt.Sprintf("not JSON: %v", err)}
	}
	var problems []string
	if pkg.Version != want {
		problems = append(problems, fmt.Sprintf("%s version is %q, VERSION is %q", pkg.Name, pkg.Version, want))
	}
	for _, deps := range []struct {
		kind string
		m    map[string]string
	}{
		{"dependencies", pkg.Deps}, {"optionalDependencies", pkg.DepsOpt},
		{"devDependencies", pkg.DepsDev}, {"peerDependencies", pkg.DepsPer},
	} {
		kind, m := deps.kind, deps.m
		names := make([]string, 0, len(m))
		for name := range m {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if (name == "x0x" || strings.HasPrefix(name, "@x0x/")) && m[name] != want {
				problems = append(problems, fmt.Sprintf("%s pins %s %q, VERSION is %q", kind, name, m[name], want))
			}
		}
	}
	return problems
}

// checkPackageLock checks the root package's version in a package-lock.json.
func checkPackageLock(path, want string) []string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	var lock struct {
		Version  string `json:"version"`
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(raw, &lock); err != nil {
		return []string{fmt.Sprintf("not JSON: %v", err)}
	}
	var problems []string
	if lock.Version != "" && lock.Version != want {
		problems = append(problems, fmt.Sprintf("version is %q, VERSION is %q", lock.Version, want))
	}
	if p, ok := lock.Packages[""]; ok && p.Version != "" && p.Version != want {
		problems = append(problems, fmt.Sprintf(`packages[""].version is %q, VERSION is %q`, p.Version, want))
	}
	return problems
}

// checkPyproject checks [project] version in a pyproject.toml. A dynamic
// version is accepted only from the VERSION file or from x0x.__version__
// (which the test checks separately) through [tool.setuptools.dynamic].
// The parser reads only the few lines it needs (no TOML library in go.mod).
func checkPyproject(path, want string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	table := ""
	var static, dynamicSrc string
	dynamic, inDynamicArray := false, false
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		if inDynamicArray {
			dynamic = dynamic || strings.Contains(line, `"version"`)
			inDynamicArray = !strings.Contains(line, "]")
			continue
		}
		if strings.HasPrefix(line, "[") {
			table = strings.TrimSpace(strings.Trim(strings.SplitN(line, "]", 2)[0], "["))
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case table == "project" && key == "version":
			if q := regexp.MustCompile(`^["']([^"']*)["']`).FindStringSubmatch(value); q != nil {
				static = q[1]
			} else {
				static = value // not a string: reported as a disagreement
			}
		case table == "project" && key == "dynamic":
			dynamic = strings.Contains(value, `"version"`)
			inDynamicArray = !strings.Contains(value, "]")
		case table == "tool.setuptools.dynamic" && key == "version":
			dynamicSrc = value
		}
	}
	switch {
	case static != "" && static != want:
		return fmt.Sprintf("[project] version is %q, VERSION is %q", static, want)
	case static != "":
		return ""
	case !dynamic:
		return "no [project] version"
	case strings.Contains(dynamicSrc, `VERSION"`) || strings.Contains(dynamicSrc, `"x0x.__version__"`):
		return ""
	default:
		return fmt.Sprintf("dynamic version from %q: use [tool.setuptools.dynamic] version = { file = \"VERSION\" } or { attr = \"x0x.__version__\" }, or teach core/x0x/version_test.go the new source", dynamicSrc)
	}
}

// TestVersionCheckers shows that the checkers above catch what they are
// meant to, on files that do not exist in the repository (yet): a top-level
// package.json with a range pin, a lock file, and dynamic pyproject versions.
func TestVersionCheckers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		json     string
		problems int
	}{
		{`{"name":"x0x","version":"1.2.3","optionalDependencies":{"@x0x/core-a":"1.2.3"}}`, 0},
		{`{"name":"x0x","version":"1.2.4","optionalDependencies":{"@x0x/core-a":"^1.2.3","left-pad":"1.0.0"}}`, 2},
		{`{"name":"demo","private":true,"version":"1.2.3","dependencies":{"x0x":"1.2.2"}}`, 1},
	} {
		if got := checkPackageJSON(write("package.json", c.json), "1.2.3"); len(got) != c.problems {
			t.Errorf("checkPackageJSON(%s) = %q, want %d problems", c.json, got, c.problems)
		}
	}
	if got := checkPackageLock(write("package-lock.json", `{"version":"1.2.2","packages":{"":{"version":"1.2.2"}}}`), "1.2.3"); len(got) != 2 {
		t.Errorf("checkPackageLock = %q, want 2 problems", got)
	}
	for _, c := range []struct {
		toml string
		ok   bool
	}{
		{"[project]\nname = \"agent-x0x\"\nversion = \"1.2.3\"  # the one version\n", true},
		{"[project] # the distribution\nversion = '1.2.3'\n", true},
		{"[project]\nname = \"agent-x0x\"\nversion = \"1.2.4\"\n[tool.other]\nversion = \"1.2.3\"\n", false},
		{"[tool.x]\nversion = \"1.2.3\"\n[project]\nname = \"agent-x0x\"\n", false},
		{"[project]\ndynamic = [\n  \"readme\",\n  \"version\",\n]\n[tool.setuptools.dynamic]\nversion = { file = \"VERSION\" }\n", true},
		{"[project]\ndynamic = [\"version\"]\n[tool.setuptools.dynamic]\nversion = { attr = \"x0x.__version__\" }\n", true},
		{"[project]\ndynamic = [\"version\"]\n[tool.setuptools_scm]\n", false},
	} {
		if got := checkPyproject(write("pyproject.toml", c.toml), "1.2.3"); (got == "") != c.ok {
			t.Errorf("checkPyproject(%q) = %q, want ok=%v", c.toml, got, c.ok)
		}
	}
}
