// Package keystore stores x0x's machine and agent keys in the data
// directory, sealed at rest, and exports/imports the agent identity for
// migration between machines.
//
// The data directory (mode 0700) holds:
//
//	local.secret  32 random bytes, created once, mode 0600
//	machine.key   the sealed machine key (ML-DSA-65), mode 0600
//	agent.key     the sealed agent key (ML-DSA-65), mode 0600
//
// Each key file is a small CBOR envelope (see the format notes in
// envelope.go) whose private key is encrypted with XChaCha20-Poly1305 under a
// key derived with BLAKE3 (derive-key mode) from local.secret and, when the
// Store has a passphrase, Argon2id(passphrase). Files are written atomically
// (temporary file, fsync, rename, fsync of the directory). An existing file
// is never overwritten except by an explicit SaveAgentKey, and a file that
// cannot be used is reported as a *FileError naming it and left untouched.
package keystore

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
	"lukechampine.com/blake3"
)

// File names inside the data directory.
const (
	MachineKeyFile = "machine.key"
	AgentKeyFile   = "agent.key"
	SecretFile     = "local.secret"
)

// HomeEnv is the environment variable naming the data directory.
const HomeEnv = "X0X_HOME"

// DefaultDir returns $X0X_HOME if it is set and non-empty, else ~/.x0x. It
// is the only function of this package that reads the environment; it does
// not create the directory.
func DefaultDir() (string, error) {
	if d := os.Getenv(HomeEnv); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("keystore: no $%s and no home directory: %w", HomeEnv, err)
	}
	return filepath.Join(home, ".x0x"), nil
}

// Options configure a Store. The zero value is valid: no passphrase,
// crypto/rand, DefaultKDFParams.
type Options struct {
	// Passphrase, when non-empty, is stretched with Argon2id and mixed into
	// the seal of every key file this Store writes, and is required to open
	// them. Open copies it; Close wipes the copy.
	Passphrase []byte
	// Rand is the source of key seeds, salts, nonces and the local secret
	// (default crypto/rand.Reader). It need not be safe for concurrent use.
	Rand io.Reader
	// KDF are the Argon2id parameters for files written with a passphrase
	// (default DefaultKDFParams). Files record their own parameters, so
	// changing this does not affect reading existing files.
	KDF KDFParams
	// MachineKeyPath, when set, is where the machine key lives instead of
	// <dir>/machine.key (e.g. a key kept apart from portable agent data). It
	// is sealed with the same local secret and passphrase as the others.
	MachineKeyPath string
}

// Store is a keystore in one data directory. It is safe for concurrent use;
// several Stores (or processes) on one directory never overwrite each
// other's key files: the first writer wins and the others load its key.
type Store struct {
	dir  string
	rand io.Reader
	kdf  KDFParams
	// machinePath is the machine key file (Options.MachineKeyPath or
	// <dir>/machine.key).
	machinePath string

	mu     sync.Mutex // guards everything below and serialises rand
	pass   []byte
	secret []byte // cached local secret, nil until needed
	closed bool
}

// Open returns a Store for dir, creating the directory (mode 0700, with
// missing parents) if needed. It does not read or create any key file. It
// fails with ErrInvalidParams for an empty dir or bad KDF parameters, and
// with a *FileError wrapping ErrPermissions if an existing dir is writable
// by group or other.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("keystore: %w: empty data directory", ErrInvalidParams)
	}
	kdf := opts.KDF
	if kdf == (KDFParams{}) {
		kdf = DefaultKDFParams()
	}
	if err := kdf.Validate(); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	dir = filepath.Clean(dir)
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	s := &Store{dir: dir, rand: r, kdf: kdf, machinePath: filepath.Join(dir, MachineKeyFile)}
	if opts.MachineKeyPath != "" {
		s.machinePath = filepath.Clean(opts.MachineKeyPath)
	}
	if len(opts.Passphrase) > 0 {
		s.pass = append([]byte(nil), opts.Passphrase...)
	}
	return s, nil
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Path returns the path of a file in the data directory (e.g. MachineKeyFile).
func (s *Store) Path(name string) string { return filepath.Join(s.dir, name) }

// Close wipes the Store's copies of the passphrase and local secret. Later
// calls fail with ErrClosed. Keys already returned stay usable.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	wipe(s.pass)
	wipe(s.secret)
	s.pass, s.secret, s.closed = nil, nil, true
	return nil
}

// LoadMachineKey loads machine.key. It returns a *FileError wrapping
// ErrNotFound if the file does not exist, or one of ErrCorrupt,
// ErrWrongPassphrase, ErrPassphraseRequired, ErrPassphraseNotUsed,
// ErrWrongSecret, ErrMissingSecret, ErrUnsupportedVersion, ErrPermissions,
// ErrWrongKind when it exists but cannot be used.
func (s *Store) LoadMachineKey() (*identity.KeyPair, error) { return s.load(kindMachine) }

// LoadAgentKey loads agent.key; errors are as for LoadMachineKey.
func (s *Store) LoadAgentKey() (*identity.KeyPair, error) { return s.load(kindAgent) }

// LoadOrCreateMachineKey loads machine.key, or, if it does not exist,
// generates a key, stores it and returns it. An existing file that cannot be
// used is an error (as for LoadMachineKey) and is never replaced.
func (s *Store) LoadOrCreateMachineKey() (*identity.KeyPair, error) {
	return s.loadOrCreate(kindMachine)
}

// LoadOrCreateAgentKey is LoadOrCreateMachineKey for agent.key.
func (s *Store) LoadOrCreateAgentKey() (*identity.KeyPair, error) {
	return s.loadOrCreate(kindAgent)
}

// SaveAgentKey seals kp into agent.key, atomically replacing any existing
// agent key (this is how an imported identity is installed; the caller
// decides to discard the old one). It creates local.secret if needed.
func (s *Store) SaveAgentKey(kp *identity.KeyPair) error {
	if kp == nil {
		return fmt.Errorf("keystore: %w: nil key pair", ErrInvalidParams)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	path := s.pathOf(kindAgent)
	data, err := s.sealLocked(kindAgent, kp)
	if err != nil {
		return err
	}
	if err := writeAtomic(path, data, true); err != nil {
		return &FileError{Path: path, Err: err}
	}
	return nil
}

func (s *Store) pathOf(kind string) string {
	if kind == kindMachine {
		return s.machinePath
	}
	return s.Path(AgentKeyFile)
}

func (s *Store) load(kind string) (*identity.KeyPair, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	return s.loadLocked(kind)
}

func (s *Store) loadOrCreate(kind string) (*identity.KeyPair, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	kp, err := s.loadLocked(kind)
	if !errors.Is(err, ErrNotFound) {
		return kp, err
	}
	path := s.pathOf(kind)
	kp, err = identity.GenerateKeyPair(s.rand)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	data, err := s.sealLocked(kind, kp)
	if err != nil {
		return nil, err
	}
	switch err := writeAtomic(path, data, false); {
	case errors.Is(err, errExists):
		// Another Store or process created it first: use theirs.
		return s.loadLocked(kind)
	case err != nil:
		return nil, &FileError{Path: path, Err: err}
	}
	return kp, nil
}

func (s *Store) loadLocked(kind string) (*identity.KeyPair, error) {
	path := s.pathOf(kind)
	data, err := readPrivate(path, maxFileSize)
	if err != nil {
		return nil, err
	}
	return s.openKeyData(path, kind, data)
}

// openKeyData decodes and decrypts the contents of a key file read from
// path, expecting a key of the given kind. Errors are *FileError.
func (s *Store) openKeyData(path, kind string, data []byte) (*identity.KeyPair, error) {
	sh, h, aad, err := decodeKeyFile(data)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	if h.Kind != kind {
		return nil, fileErr(path, ErrWrongKind, "file holds the %s key, expected the %s key", h.Kind, kind)
	}
	if h.Passphrase && len(s.pass) == 0 {
		return nil, fileErr(path, ErrPassphraseRequired, "")
	}
	if !h.Passphrase && len(s.pass) > 0 {
		return nil, fileErr(path, ErrPassphraseNotUsed, "open the store without a passphrase")
	}
	secret, err := s.secretLocked(false)
	if err != nil {
		return nil, err
	}
	key := s.fileKey(secret, h.Salt, h.Passphrase, h.KDF)
	kp, err := openWith(key, sh, aad, h.Nonce)
	wipe(key)
	switch {
	case errors.Is(err, errOpenFailed) && h.Passphrase:
		return nil, fileErr(path, ErrWrongPassphrase, "or %s is not the one that sealed this file", SecretFile)
	case errors.Is(err, errOpenFailed):
		return nil, fileErr(path, ErrWrongSecret, "%s is not the one that sealed this file", SecretFile)
	case err != nil:
		return nil, &FileError{Path: path, Err: err}
	}
	if id := kp.ID(); string(id[:]) != string(h.ID) {
		return nil, fileErr(path, ErrCorrupt, "key does not match the ID in the header")
	}
	return kp, nil
}

// fileKey derives the AEAD key of one key file.
func (s *Store) fileKey(secret, salt []byte, withPass bool, kdf KDFParams) []byte {
	ikm := make([]byte, 0, secretSize+saltSize+1+keySize)
	ikm = append(ikm, secret...)
	ikm = append(ikm, salt...)
	if withPass {
		stretched := kdf.derive(s.pass, salt)
		ikm = append(ikm, 1)
		ikm = append(ikm, stretched...)
		wipe(stretched)
	} else {
		ikm = append(ikm, 0)
	}
	key := make([]byte, keySize)
	blake3.DeriveKey(key, sealContext, ikm)
	wipe(ikm)
	return key
}

func (s *Store) sealLocked(kind string, kp *identity.KeyPair) ([]byte, error) {
	secret, err := s.secretLocked(true)
	if err != nil {
		return nil, err
	}
	salt, err := randBytes(s.rand, saltSize)
	if err != nil {
		return nil, err
	}
	nonce, err := randBytes(s.rand, nonceSize)
	if err != nil {
		return nil, err
	}
	id := kp.ID()
	h := keyHeader{Kind: kind, ID: id[:], Passphrase: len(s.pass) > 0, Salt: salt, Nonce: nonce}
	if h.Passphrase {
		h.KDF = s.kdf
	}
	header, err := wire.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("keystore: encoding header: %w", err)
	}
	key := s.fileKey(secret, salt, h.Passphrase, h.KDF)
	defer wipe(key)
	data, err := sealWith(key, keyFileMagic, header, nonce, kp)
	if err != nil {
		return nil, fmt.Errorf("keystore: sealing: %w", err)
	}
	return data, nil
}

// secretLocked returns the local secret, reading it or (if create and no
// sealed key file exists) creating it.
func (s *Store) secretLocked(create bool) ([]byte, error) {
	if s.secret != nil {
		return s.secret, nil
	}
	path := s.Path(SecretFile)
	for attempt := 0; ; attempt++ {
		data, err := readPrivate(path, 2*secretSize)
		if err == nil {
			if len(data) != secretSize {
				wipe(data)
				return nil, fileErr(path, ErrCorrupt, "local secret is %d bytes, want %d", len(data), secretSize)
			}
			s.secret = data
			return data, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if !create || attempt > 0 {
			return nil, s.missingSecret(path)
		}
		for _, name := range []string{MachineKeyFile, AgentKeyFile} {
			if _, err := os.Lstat(s.Path(name)); !errors.Is(err, fs.ErrNotExist) {
				// Creating a new secret would not bring the sealed key back.
				return nil, s.missingSecret(path)
			}
		}
		secret, err := randBytes(s.rand, secretSize)
		if err != nil {
			return nil, err
		}
		err = writeAtomic(path, secret, false)
		wipe(secret)
		if err != nil && !errors.Is(err, errExists) {
			return nil, &FileError{Path: path, Err: err}
		}
		// Read it back (ours, or a concurrent creator's).
	}
}

func (s *Store) missingSecret(path string) error {
	var present []string
	for _, name := range []string{MachineKeyFile, AgentKeyFile} {
		if _, err := os.Lstat(s.Path(name)); err == nil {
			present = append(present, name)
		}
	}
	if len(present) == 0 {
		return fileErr(path, ErrMissingSecret, "")
	}
	return fileErr(path, ErrMissingSecret, "sealed key files %v exist but cannot be opened without it; restore it or move them away", present)
}
