package keystore

import (
	"bytes"
	"errors"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
	"golang.org/x/crypto/chacha20poly1305"
)

func exportCheap(t testing.TB, kp *identity.KeyPair, pass string) []byte {
	t.Helper()
	b, err := ExportAgentWith(kp, []byte(pass), BundleOptions{Rand: seeded(4), KDF: cheapKDF})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExportImportRoundTrip(t *testing.T) {
	kp, err := identity.GenerateKeyPair(seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	bundle := exportCheap(t, kp, "migrate me")
	if bytes.Contains(bundle, kp.PrivateBytes()[:64]) {
		t.Fatal("bundle contains the private key in the clear")
	}
	got, err := ImportAgent(bundle, []byte("migrate me"))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != kp.ID() || !bytes.Equal(got.PrivateBytes(), kp.PrivateBytes()) {
		t.Fatal("imported key differs")
	}
	id, err := BundleAgentID(bundle)
	if err != nil || id != kp.ID() {
		t.Fatalf("BundleAgentID = %s, %v", id.Short(), err)
	}
	// Two exports of one key differ (fresh salt and nonce) but both import.
	other, err := ExportAgentWith(kp, []byte("migrate me"), BundleOptions{Rand: seeded(5), KDF: cheapKDF})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other, bundle) {
		t.Fatal("two exports are identical")
	}
	if _, err := ImportAgent(other, []byte("migrate me")); err != nil {
		t.Fatal(err)
	}
}

// A bundle moves an agent between two data directories (two machines):
// the target keeps its own machine key and local secret.
func TestMigrationBetweenStores(t *testing.T) {
	src := openStore(t, t.TempDir(), "")
	agent, err := src.LoadOrCreateAgentKey()
	if err != nil {
		t.Fatal(err)
	}
	bundle := exportCheap(t, agent, "pw")

	dst := openStore(t, t.TempDir(), "local pw")
	oldAgent, err := dst.LoadOrCreateAgentKey()
	if err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, dst.Path(AgentKeyFile))

	imported, err := ImportAgent(bundle, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	// Import alone does not touch the existing agent.key.
	if !bytes.Equal(mustRead(t, dst.Path(AgentKeyFile)), before) {
		t.Fatal("ImportAgent modified agent.key")
	}
	if kp, err := dst.LoadAgentKey(); err != nil || kp.ID() != oldAgent.ID() {
		t.Fatalf("existing agent changed: %v", err)
	}
	// A failed import does not either.
	if _, err := ImportAgent(bundle, []byte("nope")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if !bytes.Equal(mustRead(t, dst.Path(AgentKeyFile)), before) {
		t.Fatal("failed import modified agent.key")
	}
	if err := dst.SaveAgentKey(imported); err != nil {
		t.Fatal(err)
	}
	if kp, err := dst.LoadAgentKey(); err != nil || kp.ID() != agent.ID() {
		t.Fatalf("after save: %v", err)
	}
}

// sealBundleRaw forges a bundle with a chosen header and plaintext.
func sealBundleRaw(t *testing.T, h bundleHeader, pass string, plaintext []byte) []byte {
	t.Helper()
	header, err := wire.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	sh := shell{Magic: bundleMagic, Version: formatVersion, Header: header}
	aad, err := sh.aad()
	if err != nil {
		t.Fatal(err)
	}
	aead, err := chacha20poly1305.NewX(bundleKey(h.KDF, []byte(pass), h.Salt))
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

func TestImportErrors(t *testing.T) {
	kp, _ := identity.GenerateKeyPair(seeded(1))
	other, _ := identity.GenerateKeyPair(seeded(2))
	bundle := exportCheap(t, kp, "pw")
	store := openStore(t, t.TempDir(), "")
	if _, err := store.LoadOrCreateAgentKey(); err != nil {
		t.Fatal(err)
	}
	keyFile := mustRead(t, store.Path(AgentKeyFile))
	flip := func(i int) []byte {
		c := append([]byte(nil), bundle...)
		c[i] ^= 0x10
		return c
	}
	h := bundleHeader{KDF: cheapKDF, Salt: make([]byte, saltSize), Nonce: make([]byte, nonceSize)}
	mismatch := h
	mismatch.ID = func() []byte { id := other.ID(); return id[:] }()
	huge := h
	huge.ID = mismatch.ID
	huge.KDF = KDFParams{Time: MaxKDFTime, MemoryKiB: MaxKDFMemoryKiB + 1, Threads: 1}
	// A bundle (encoded without running Argon2) whose header asks for too much memory.
	hdr, err := wire.Marshal(huge)
	if err != nil {
		t.Fatal(err)
	}
	hugeBundle, err := encodeShell(bundleMagic, hdr, make([]byte, sealedSize))
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		data []byte
		pass string
		want error
	}{
		{"empty passphrase", bundle, "", ErrPassphraseRequired},
		{"wrong passphrase", bundle, "PW", ErrWrongPassphrase},
		{"empty", nil, "pw", ErrCorrupt},
		{"truncated", bundle[:len(bundle)-10], "pw", ErrCorrupt},
		{"trailing data", append(append([]byte(nil), bundle...), 1, 2), "pw", ErrCorrupt},
		{"flipped ciphertext", flip(len(bundle) - 50), "pw", ErrCorrupt},
		{"flipped header", flip(30), "pw", ErrCorrupt},
		{"garbage", bytes.Repeat([]byte{0x5a}, 300), "pw", ErrCorrupt},
		{"version 2", reshell(t, bundle, func(sh *shell) { sh.Version = 2 }), "pw", ErrUnsupportedVersion},
		{"version 99 other layout", reshell(t, bundle, func(sh *shell) { sh.Version = 99; sh.Header = nil; sh.Sealed = nil }), "pw", ErrUnsupportedVersion},
		{"key file", keyFile, "pw", ErrWrongKind},
		{"tampered, checksum fixed", reshell(t, bundle, func(sh *shell) { sh.Sealed[3] ^= 1 }), "pw", ErrWrongPassphrase},
		{"ID mismatch", sealBundleRaw(t, mismatch, "pw", kp.PrivateBytes()), "pw", ErrIDMismatch},
		{"bad key bytes", sealBundleRaw(t, mismatch, "pw", make([]byte, identity.PrivateKeySize)), "pw", ErrCorrupt},
		{"KDF out of bounds", hugeBundle, "pw", ErrCorrupt},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]byte(nil), tc.data...)
			_, err := ImportAgent(tc.data, []byte(tc.pass))
			if !errors.Is(err, tc.want) {
				t.Fatalf("ImportAgent: %v, want %v", err, tc.want)
			}
			if !bytes.Equal(before, tc.data) {
				t.Fatal("ImportAgent modified its input")
			}
		})
	}
	// The forgery with the right ID and key imports: the cases above fail
	// for the stated reason.
	good := mismatch
	good.ID = func() []byte { id := other.ID(); return id[:] }()
	if got, err := ImportAgent(sealBundleRaw(t, good, "pw", other.PrivateBytes()), []byte("pw")); err != nil || got.ID() != other.ID() {
		t.Fatalf("control forgery: %v", err)
	}
}

func TestExportErrors(t *testing.T) {
	kp, _ := identity.GenerateKeyPair(seeded(1))
	if _, err := ExportAgent(kp, nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Fatalf("empty passphrase: %v", err)
	}
	if _, err := ExportAgent(nil, []byte("pw")); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("nil key: %v", err)
	}
	if _, err := ExportAgentWith(kp, []byte("pw"), BundleOptions{KDF: KDFParams{Time: 1}}); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("bad KDF: %v", err)
	}
	if _, err := ExportAgentWith(kp, []byte("pw"), BundleOptions{Rand: failingReader{}, KDF: cheapKDF}); err == nil {
		t.Fatal("export with failing randomness succeeded")
	}
}

// sentinels lists every error the decoders may return.
var sentinels = []error{ErrCorrupt, ErrWrongKind, ErrUnsupportedVersion, ErrWrongPassphrase, ErrIDMismatch,
	ErrWrongSecret, ErrPassphraseRequired, ErrPassphraseNotUsed}

func typed(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func FuzzOpenBundle(f *testing.F) {
	kp, _ := identity.GenerateKeyPair(seeded(1))
	bundle, err := ExportAgentWith(kp, []byte("pw"), BundleOptions{Rand: seeded(2), KDF: cheapKDF})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bundle, []byte("pw"))
	f.Add(bundle[:100], []byte("pw"))
	f.Add([]byte{0xa0}, []byte("x"))
	f.Fuzz(func(t *testing.T, data, pass []byte) {
		if _, h, _, err := decodeBundle(data); err == nil && h.KDF.MemoryKiB > 1024 {
			return // valid but expensive parameters: not what this target explores
		}
		got, err := ImportAgent(data, pass)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if id, err := BundleAgentID(data); err != nil || id != got.ID() {
			t.Fatalf("imported key %s but header says %s (%v)", got.ID().Short(), id.Short(), err)
		}
	})
}

func FuzzOpenKeyFile(f *testing.F) {
	s, err := Open(f.TempDir(), Options{Passphrase: []byte("pw"), Rand: seeded(1), KDF: cheapKDF})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	if _, err := s.LoadOrCreateMachineKey(); err != nil {
		f.Fatal(err)
	}
	good, err := readPrivate(s.Path(MachineKeyFile), maxFileSize)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:50])
	f.Add([]byte{0xa1, 0x01, 0x60})
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, h, _, err := decodeKeyFile(data); err == nil && h.KDF.MemoryKiB > 1024 {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		_, err := s.openKeyData("fuzz.key", kindMachine, data)
		if err == nil {
			return
		}
		var fe *FileError
		if !errors.As(err, &fe) || fe.Path != "fuzz.key" || !typed(err) {
			t.Fatalf("error %v is not a typed *FileError naming the file", err)
		}
	})
}

// FuzzSealedHeaders fuzzes the header and ciphertext behind a valid
// checksum, which the byte-level fuzzers above rarely get past.
func FuzzSealedHeaders(f *testing.F) {
	s, err := Open(f.TempDir(), Options{Passphrase: []byte("pw"), Rand: seeded(1), KDF: cheapKDF})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	kp, err := s.LoadOrCreateMachineKey()
	if err != nil {
		f.Fatal(err)
	}
	data, err := readPrivate(s.Path(MachineKeyFile), maxFileSize)
	if err != nil {
		f.Fatal(err)
	}
	var sh shell
	if err := wire.Unmarshal(data, &sh, "seed"); err != nil {
		f.Fatal(err)
	}
	f.Add(false, sh.Header, sh.Sealed)
	bundle := exportCheap(f, kp, "pw")
	if err := wire.Unmarshal(bundle, &sh, "seed"); err != nil {
		f.Fatal(err)
	}
	f.Add(true, sh.Header, sh.Sealed)
	f.Fuzz(func(t *testing.T, isBundle bool, header, sealed []byte) {
		magic := keyFileMagic
		if isBundle {
			magic = bundleMagic
		}
		data, err := encodeShell(magic, header, sealed)
		if err != nil {
			t.Fatal(err)
		}
		if isBundle {
			if _, h, _, err := decodeBundle(data); err == nil && h.KDF.MemoryKiB > 1024 {
				return
			}
			if _, err := ImportAgent(data, []byte("pw")); err != nil && !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if _, h, _, err := decodeKeyFile(data); err == nil && h.KDF.MemoryKiB > 1024 {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, err := s.openKeyData("fuzz.key", kindMachine, data); err != nil && !typed(err) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
