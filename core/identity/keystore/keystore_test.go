package keystore

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
	"go.uber.org/goleak"
	"golang.org/x/crypto/chacha20poly1305"
	"lukechampine.com/blake3"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cheapKDF keeps Argon2id fast in tests; the format records it, so reading
// is exercised exactly as with the defaults.
var cheapKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func seeded(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return mrand.NewChaCha8(s)
}

func openStore(t testing.TB, dir string, pass string) *Store {
	t.Helper()
	opts := Options{Rand: seeded(1), KDF: cheapKDF}
	if pass != "" {
		opts.Passphrase = []byte(pass)
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// wantFileErr checks err is a *FileError naming path and matching sentinel.
func wantFileErr(t *testing.T, err error, path string, sentinel error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v for %s", sentinel, path)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %q does not match %v", err, sentinel)
	}
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("error %q (%T) is not a *FileError", err, err)
	}
	if fe.Path != path {
		t.Fatalf("FileError.Path = %q, want %q (error %q)", fe.Path, path, err)
	}
}

func TestFirstRunCreatesLaterRunsLoad(t *testing.T) {
	for _, pass := range []string{"", "correct horse battery staple"} {
		t.Run("pass="+pass, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "nested", "x0x")
			s := openStore(t, dir, pass)
			if got := mode(t, dir); got != 0o700 {
				t.Fatalf("data dir mode %04o, want 0700", got)
			}
			if _, err := s.LoadMachineKey(); !errors.Is(err, ErrNotFound) {
				t.Fatalf("LoadMachineKey on empty dir: %v, want ErrNotFound", err)
			}
			m1, err := s.LoadOrCreateMachineKey()
			if err != nil {
				t.Fatal(err)
			}
			a1, err := s.LoadOrCreateAgentKey()
			if err != nil {
				t.Fatal(err)
			}
			if m1.ID() == a1.ID() {
				t.Fatal("machine and agent keys are the same")
			}
			for _, name := range []string{MachineKeyFile, AgentKeyFile, SecretFile} {
				if got := mode(t, s.Path(name)); got != 0o600 {
					t.Fatalf("%s mode %04o, want 0600", name, got)
				}
			}
			// No temporary files are left behind.
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != 3 {
				t.Fatalf("data dir holds %d entries, want 3: %v", len(ents), ents)
			}
			// The private key is not stored in the clear.
			raw := mustRead(t, s.Path(MachineKeyFile))
			if bytes.Contains(raw, m1.PrivateBytes()[:64]) {
				t.Fatal("machine.key contains the private key in the clear")
			}
			before := mustRead(t, s.Path(AgentKeyFile))
			_ = s.Close()

			// Second run: a fresh Store loads the same keys.
			s2 := openStore(t, dir, pass)
			m2, err := s2.LoadMachineKey()
			if err != nil {
				t.Fatal(err)
			}
			a2, err := s2.LoadOrCreateAgentKey()
			if err != nil {
				t.Fatal(err)
			}
			if m2.ID() != m1.ID() || a2.ID() != a1.ID() {
				t.Fatal("second run loaded different keys")
			}
			if !bytes.Equal(mustRead(t, s2.Path(AgentKeyFile)), before) {
				t.Fatal("LoadOrCreateAgentKey rewrote an existing agent.key")
			}
			// The loaded key signs like the original.
			sig := m2.Sign(wire.PurposePeerAuth, []byte("hello"))
			if err := m1.Public().Verify(wire.PurposePeerAuth, []byte("hello"), sig); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLoadMissingNamesFile(t *testing.T) {
	s := openStore(t, t.TempDir(), "")
	_, err := s.LoadAgentKey()
	wantFileErr(t, err, s.Path(AgentKeyFile), ErrNotFound)
	if _, err := os.Lstat(s.Path(SecretFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a Load created local.secret")
	}
}

func TestSaveAgentKeyReplaces(t *testing.T) {
	s := openStore(t, t.TempDir(), "pw")
	old, err := s.LoadOrCreateAgentKey()
	if err != nil {
		t.Fatal(err)
	}
	imported, err := identity.GenerateKeyPair(seeded(9))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveAgentKey(imported); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadAgentKey()
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != imported.ID() || got.ID() == old.ID() {
		t.Fatal("SaveAgentKey did not install the new key")
	}
	if m := mode(t, s.Path(AgentKeyFile)); m != 0o600 {
		t.Fatalf("agent.key mode %04o", m)
	}
	if err := s.SaveAgentKey(nil); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("SaveAgentKey(nil) = %v", err)
	}
}

// sealRaw builds a key file around arbitrary plaintext and header fields,
// the way the store would, so tests can forge files that pass the
// checksum and AEAD but carry bad contents.
func sealRaw(t *testing.T, s *Store, h keyHeader, plaintext []byte, version uint64) []byte {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	secret, err := s.secretLocked(true)
	if err != nil {
		t.Fatal(err)
	}
	header, err := wire.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	sh := shell{Magic: keyFileMagic, Version: version, Header: header}
	aad, err := sh.aad()
	if err != nil {
		t.Fatal(err)
	}
	key := s.fileKey(secret, h.Salt, h.Passphrase, h.KDF)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		t.Fatal(err)
	}
	sh.Sealed = aead.Seal(nil, h.Nonce, plaintext, aad)
	sh.Check = checksum(aad, sh.Sealed)
	out, err := wire.Marshal(sh)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// reshell decodes a valid file, applies f to its shell, recomputes the
// checksum (so only f's change is detected) and re-encodes.
func reshell(t *testing.T, data []byte, f func(*shell)) []byte {
	t.Helper()
	var sh shell
	if err := wire.Unmarshal(data, &sh, "test"); err != nil {
		t.Fatal(err)
	}
	f(&sh)
	aad, err := sh.aad()
	if err != nil {
		t.Fatal(err)
	}
	sh.Check = checksum(aad, sh.Sealed)
	out, err := wire.Marshal(sh)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBadKeyFilesAreTypedAndUntouched(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, "")
	if _, err := s.LoadOrCreateMachineKey(); err != nil {
		t.Fatal(err)
	}
	agent, err := s.LoadOrCreateAgentKey()
	if err != nil {
		t.Fatal(err)
	}
	good := mustRead(t, s.Path(MachineKeyFile))
	agentFile := mustRead(t, s.Path(AgentKeyFile))
	other, _ := identity.GenerateKeyPair(seeded(7))
	bundle, err := ExportAgentWith(agent, []byte("pw"), BundleOptions{Rand: seeded(3), KDF: cheapKDF})
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(id identity.ID) keyHeader {
		return keyHeader{Kind: kindMachine, ID: id[:], Salt: make([]byte, saltSize), Nonce: make([]byte, nonceSize)}
	}
	flip := func(b []byte, i int) []byte {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		return c
	}
	garbage := make([]byte, len(good))
	_, _ = seeded(5).Read(garbage)
	notCanonical := bytes.Repeat([]byte{0xff}, identity.PrivateKeySize)
	inconsistent := other.PrivateBytes()
	inconsistent[64] ^= 1 // corrupt tr

	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"truncated", good[:len(good)/2], ErrCorrupt},
		{"one byte short", good[:len(good)-1], ErrCorrupt},
		{"trailing byte", append(append([]byte(nil), good...), 0), ErrCorrupt},
		{"garbage", garbage, ErrCorrupt},
		{"wrong CBOR type", []byte{0x18, 42}, ErrCorrupt},
		{"text file", []byte("-----BEGIN PRIVATE KEY-----\n"), ErrCorrupt},
		{"flipped ciphertext bit", flip(good, len(good)-60), ErrCorrupt},
		{"flipped checksum bit", flip(good, len(good)-1), ErrCorrupt},
		{"foreign magic", reshell(t, good, func(sh *shell) { sh.Magic = "ssh-key" }), ErrCorrupt},
		{"version 0", reshell(t, good, func(sh *shell) { sh.Version = 0 }), ErrCorrupt},
		{"version 2", reshell(t, good, func(sh *shell) { sh.Version = 2; sh.Header = []byte{0xa0} }), ErrUnsupportedVersion},
		{"bad header", reshell(t, good, func(sh *shell) { sh.Header = []byte{0xff} }), ErrCorrupt},
		{"tampered ciphertext, checksum fixed", reshell(t, good, func(sh *shell) { sh.Sealed[0] ^= 1 }), ErrWrongSecret},
		{"agent key as machine key", agentFile, ErrWrongKind},
		{"export bundle", bundle, ErrWrongKind},
		{"non-canonical key bytes", sealRaw(t, s, hdr(other.ID()), notCanonical, formatVersion), ErrCorrupt},
		{"inconsistent key bytes", sealRaw(t, s, hdr(other.ID()), inconsistent, formatVersion), ErrCorrupt},
		{"short key bytes", sealRaw(t, s, hdr(other.ID()), other.PrivateBytes()[:100], formatVersion), ErrCorrupt},
		{"ID mismatch", sealRaw(t, s, hdr(agent.ID()), other.PrivateBytes(), formatVersion), ErrCorrupt},
	}
	path := s.Path(MachineKeyFile)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := s.LoadMachineKey()
			wantFileErr(t, err, path, tc.want)
			_, err = s.LoadOrCreateMachineKey()
			wantFileErr(t, err, path, tc.want)
			// A fresh store (no cached secret) behaves the same.
			_, err = openStore(t, dir, "").LoadOrCreateMachineKey()
			wantFileErr(t, err, path, tc.want)
			if got := mustRead(t, path); !bytes.Equal(got, tc.data) {
				t.Fatal("machine.key was modified")
			}
			if got := mode(t, path); got != 0o600 {
				t.Fatalf("mode changed to %04o", got)
			}
		})
	}
	// The well-formed forgery with a valid key really is accepted, which
	// shows the cases above fail for the stated reason and not another.
	if err := os.WriteFile(path, sealRaw(t, s, hdr(other.ID()), other.PrivateBytes(), formatVersion), 0o600); err != nil {
		t.Fatal(err)
	}
	if kp, err := s.LoadMachineKey(); err != nil || kp.ID() != other.ID() {
		t.Fatalf("control forgery: %v", err)
	}
}

func TestPassphraseErrors(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, "right")
	kp, err := s.LoadOrCreateAgentKey()
	if err != nil {
		t.Fatal(err)
	}
	path := s.Path(AgentKeyFile)
	before := mustRead(t, path)

	_, err = openStore(t, dir, "").LoadOrCreateAgentKey()
	wantFileErr(t, err, path, ErrPassphraseRequired)
	_, err = openStore(t, dir, "wrong").LoadOrCreateAgentKey()
	wantFileErr(t, err, path, ErrWrongPassphrase)
	if errors.Is(err, ErrCorrupt) {
		t.Fatal("wrong passphrase reported as corruption")
	}
	// Corruption of a passphrase file is still corruption, not a wrong passphrase.
	damaged := append([]byte(nil), before...)
	damaged[len(damaged)-80] ^= 1
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = openStore(t, dir, "right").LoadAgentKey()
	wantFileErr(t, err, path, ErrCorrupt)
	if err := os.WriteFile(path, before, 0o600); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustRead(t, path), before) {
		t.Fatal("agent.key modified")
	}
	got, err := openStore(t, dir, "right").LoadAgentKey()
	if err != nil || got.ID() != kp.ID() {
		t.Fatalf("reload with right passphrase: %v", err)
	}

	// A file sealed without a passphrase is refused when one is given.
	dir2 := t.TempDir()
	if _, err := openStore(t, dir2, "").LoadOrCreateMachineKey(); err != nil {
		t.Fatal(err)
	}
	p2 := filepath.Join(dir2, MachineKeyFile)
	b2 := mustRead(t, p2)
	_, err = openStore(t, dir2, "pw").LoadOrCreateMachineKey()
	wantFileErr(t, err, p2, ErrPassphraseNotUsed)
	if !bytes.Equal(mustRead(t, p2), b2) {
		t.Fatal("machine.key modified")
	}
}

func TestPermissionsRefused(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, "")
	if _, err := s.LoadOrCreateMachineKey(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{MachineKeyFile, SecretFile} {
		for _, m := range []fs.FileMode{0o640, 0o604, 0o660, 0o666} {
			path := s.Path(name)
			before := mustRead(t, path)
			if err := os.Chmod(path, m); err != nil {
				t.Fatal(err)
			}
			_, err := openStore(t, dir, "").LoadOrCreateMachineKey()
			wantFileErr(t, err, path, ErrPermissions)
			if got := mode(t, path); got != m {
				t.Fatalf("%s mode changed from %04o to %04o", name, m, got)
			}
			if !bytes.Equal(mustRead(t, path), before) {
				t.Fatalf("%s modified", name)
			}
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A symlink is not a regular file.
	path := s.Path(MachineKeyFile)
	real := filepath.Join(t.TempDir(), "elsewhere.key")
	if err := os.Rename(path, real); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, path); err != nil {
		t.Fatal(err)
	}
	_, err := openStore(t, dir, "").LoadMachineKey()
	wantFileErr(t, err, path, ErrPermissions)

	// A data directory writable by others is refused.
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err = Open(open, Options{KDF: cheapKDF})
	wantFileErr(t, err, open, ErrPermissions)
}

func TestLocalSecretProblems(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, "")
	kp, err := s.LoadOrCreateMachineKey()
	if err != nil {
		t.Fatal(err)
	}
	secretPath := s.Path(SecretFile)
	keyPath := s.Path(MachineKeyFile)
	secret := mustRead(t, secretPath)
	key := mustRead(t, keyPath)

	// Wrong length.
	if err := os.WriteFile(secretPath, secret[:31], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = openStore(t, dir, "").LoadOrCreateMachineKey()
	wantFileErr(t, err, secretPath, ErrCorrupt)

	// Another secret: the key file is intact but was sealed with the old one.
	other := bytes.Repeat([]byte{7}, secretSize)
	if err := os.WriteFile(secretPath, other, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = openStore(t, dir, "").LoadOrCreateMachineKey()
	wantFileErr(t, err, keyPath, ErrWrongSecret)

	// Missing secret while a key file exists: refused, and not recreated.
	if err := os.Remove(secretPath); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dir, "")
	_, err = s2.LoadOrCreateMachineKey()
	wantFileErr(t, err, secretPath, ErrMissingSecret)
	_, err = s2.LoadOrCreateAgentKey() // would need a new secret
	wantFileErr(t, err, secretPath, ErrMissingSecret)
	if _, err := os.Lstat(secretPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("local.secret was recreated although a sealed key exists")
	}
	if _, err := os.Lstat(s.Path(AgentKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("agent.key was created without a usable secret")
	}
	if !bytes.Equal(mustRead(t, keyPath), key) {
		t.Fatal("machine.key modified")
	}

	// Restoring the secret restores access.
	if err := os.WriteFile(secretPath, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := openStore(t, dir, "").LoadMachineKey()
	if err != nil || got.ID() != kp.ID() {
		t.Fatalf("after restoring the secret: %v", err)
	}
}

func TestConcurrentStoresAgree(t *testing.T) {
	dir := t.TempDir()
	const n = 4
	ids := make([]identity.ID, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		s, err := Open(dir, Options{Rand: seeded(byte(10 + i)), KDF: cheapKDF})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close()
			kp, err := s.LoadOrCreateAgentKey()
			if err == nil {
				ids[i] = kp.ID()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("store %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("store %d got agent %s, store 0 got %s", i, ids[i].Short(), ids[0].Short())
		}
	}
	final, err := openStore(t, dir, "").LoadAgentKey()
	if err != nil || final.ID() != ids[0] {
		t.Fatalf("final load: %v", err)
	}
}

func TestOpenValidationAndClose(t *testing.T) {
	if _, err := Open("", Options{}); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("empty dir: %v", err)
	}
	bad := []KDFParams{
		{Time: 0, MemoryKiB: 64, Threads: 1},
		{Time: MaxKDFTime + 1, MemoryKiB: 64, Threads: 1},
		{Time: 1, MemoryKiB: 64, Threads: 0},
		{Time: 1, MemoryKiB: 7, Threads: 1},
		{Time: 1, MemoryKiB: 8*4 - 1, Threads: 4},
		{Time: 1, MemoryKiB: MaxKDFMemoryKiB + 1, Threads: 1},
	}
	for _, p := range bad {
		if _, err := Open(t.TempDir(), Options{KDF: p}); !errors.Is(err, ErrInvalidParams) {
			t.Fatalf("KDF %+v accepted: %v", p, err)
		}
	}
	if err := DefaultKDFParams().Validate(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file, Options{}); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("Open on a file: %v", err)
	}

	s := openStore(t, t.TempDir(), "pw")
	if _, err := s.LoadOrCreateMachineKey(); err != nil {
		t.Fatal(err)
	}
	pass, secret := s.pass, s.secret
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pass, make([]byte, len(pass))) || !bytes.Equal(secret, make([]byte, len(secret))) {
		t.Fatal("Close did not wipe the passphrase and secret")
	}
	if _, err := s.LoadMachineKey(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if _, err := s.LoadOrCreateAgentKey(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestRandFailure(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Rand: failingReader{}, KDF: cheapKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.LoadOrCreateMachineKey(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("failed creation left files: %v", ents)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv(HomeEnv, "/some/where")
	if d, err := DefaultDir(); err != nil || d != "/some/where" {
		t.Fatalf("DefaultDir = %q, %v", d, err)
	}
	home := t.TempDir()
	t.Setenv(HomeEnv, "")
	t.Setenv("HOME", home)
	if d, err := DefaultDir(); err != nil || d != filepath.Join(home, ".x0x") {
		t.Fatalf("DefaultDir = %q, %v", d, err)
	}
}

// TestKeyDerivationSeparation checks that the seal key depends on every
// input: secret, salt, passphrase presence and value, KDF parameters.
func TestKeyDerivationSeparation(t *testing.T) {
	s := &Store{pass: []byte("a")}
	secret := bytes.Repeat([]byte{1}, secretSize)
	salt := bytes.Repeat([]byte{2}, saltSize)
	base := s.fileKey(secret, salt, false, KDFParams{})
	keys := [][]byte{
		base,
		s.fileKey(bytes.Repeat([]byte{3}, secretSize), salt, false, KDFParams{}),
		s.fileKey(secret, bytes.Repeat([]byte{3}, saltSize), false, KDFParams{}),
		s.fileKey(secret, salt, true, cheapKDF),
		s.fileKey(secret, salt, true, KDFParams{Time: 2, MemoryKiB: 64, Threads: 1}),
		(&Store{pass: []byte("b")}).fileKey(secret, salt, true, cheapKDF),
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if bytes.Equal(keys[i], keys[j]) {
				t.Fatalf("keys %d and %d are equal", i, j)
			}
		}
	}
	// Independent recomputation of the no-passphrase derivation.
	want := make([]byte, 32)
	blake3.DeriveKey(want, "x0x v1 keystore seal key", append(append(append([]byte{}, secret...), salt...), 0))
	if !bytes.Equal(base, want) {
		t.Fatal("seal key derivation differs from the documented formula")
	}
}

func BenchmarkLoadMachineKeyCheapKDF(b *testing.B) {
	dir := b.TempDir()
	s := openStore(b, dir, "pw")
	if _, err := s.LoadOrCreateMachineKey(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.LoadMachineKey(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnlockDefaultKDF measures one passphrase unlock with the default
// Argon2id parameters (the cost a user pays at start-up).
func BenchmarkUnlockDefaultKDF(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{Passphrase: []byte("pw"), Rand: seeded(1)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.LoadOrCreateMachineKey(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.LoadMachineKey(); err != nil {
			b.Fatal(err)
		}
	}
}
