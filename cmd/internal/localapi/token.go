package localapi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TokenFile is the name of the bearer token's file in the data directory.
const TokenFile = "api-token"

// tokenBytes is the token's entropy (it is written as hex).
const tokenBytes = 32

// LoadOrCreateToken returns the local API's bearer token from
// <dataDir>/api-token, creating the file (mode 0600, 64 hex digits) at
// the first start. A token file readable or writable by anyone but its
// owner, or one that does not hold a token of at least 32 characters, is
// an error naming the file: the daemon does not start with it.
func LoadOrCreateToken(dataDir string) (string, error) {
	if dataDir == "" {
		return "", errors.New("localapi: no data directory for the token file")
	}
	path := filepath.Join(dataDir, TokenFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createToken(path)
	}
	if err != nil {
		return "", fmt.Errorf("localapi: token file: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("localapi: token file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("localapi: token file %s has mode %v: others may read it (want 0600)", path, fi.Mode().Perm())
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 32 || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("localapi: token file %s holds no token (want at least 32 characters on one line)", path)
	}
	return tok, nil
}

func createToken(path string) (string, error) {
	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	// O_EXCL: two daemons racing on one directory cannot both write (the
	// agent's data-directory lock refuses the second anyway).
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("localapi: creating the token file: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("localapi: writing the token file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("localapi: writing the token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("localapi: writing the token file: %w", err)
	}
	return tok, nil
}
