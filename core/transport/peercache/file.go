package peercache

import (
	"errors"
	"fmt"
	"github.com/saorsa-labs/x0x-go/core/internal/atomicfile"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// File format (version 1): a CBOR map {1: magic "x0x-peercache", 2: version,
// 3: body bytes}. The outer map is fixed for all versions, so a file from a
// newer build is recognised as ErrUnsupportedVersion rather than garbage.
// Body v1 is {1: [entry...]}, entry = {1: peer ID (32 bytes), 2: address,
// 3: successes, 4: failures, 5: RTT in ns, 6: last seen in Unix ns (0: never)}.
const (
	fileMagic   = "x0x-peercache"
	fileVersion = 1
	// HardMaxEntries bounds the entries a file may hold, whatever the
	// MaxEntries of the cache reading it.
	HardMaxEntries = 1 << 16
)

// Errors about the cache file, wrapped in a *FileError with detail.
var (
	// ErrCorrupt: the file is not a valid peer cache file.
	ErrCorrupt = errors.New("corrupt peer cache file")
	// ErrUnsupportedVersion: a peer cache file of a format version this
	// build does not read.
	ErrUnsupportedVersion = errors.New("unsupported peer cache format version")
)

// FileError reports a problem with the cache file. Err wraps ErrCorrupt,
// ErrUnsupportedVersion or an I/O error from the operating system.
type FileError struct {
	// Path is the cache file.
	Path string
	// Err is the cause; match it with errors.Is.
	Err error
}

// Error returns "peercache: <path>: <cause>".
func (e *FileError) Error() string { return fmt.Sprintf("peercache: %s: %v", e.Path, e.Err) }

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

type fileShell struct {
	Magic   string `cbor:"1,keyasint"`
	Version uint64 `cbor:"2,keyasint"`
	Body    []byte `cbor:"3,keyasint"`
}

type fileBody struct {
	Entries []fileEntry `cbor:"1,keyasint"`
}

type fileEntry struct {
	Peer      []byte `cbor:"1,keyasint"`
	Addr      string `cbor:"2,keyasint"`
	Successes uint64 `cbor:"3,keyasint"`
	Failures  uint64 `cbor:"4,keyasint"`
	RTT       int64  `cbor:"5,keyasint"`
	LastSeen  int64  `cbor:"6,keyasint"`
	Services  uint8  `cbor:"7,keyasint,omitempty"`
}

func encodeFile(entries []Entry) ([]byte, error) {
	body := fileBody{Entries: make([]fileEntry, len(entries))}
	for i, e := range entries {
		var seen int64
		if !e.LastSeen.IsZero() {
			seen = e.LastSeen.UnixNano()
		}
		body.Entries[i] = fileEntry{
			Peer: e.Peer[:], Addr: e.Addr, Successes: e.Successes, Failures: e.Failures,
			RTT: int64(e.RTT), LastSeen: seen, Services: e.Services,
		}
	}
	b, err := wire.Marshal(body)
	if err != nil {
		return nil, err
	}
	return wire.Marshal(fileShell{Magic: fileMagic, Version: fileVersion, Body: b})
}

// decodeFile parses file contents. Errors wrap ErrCorrupt or
// ErrUnsupportedVersion (without the path).
func decodeFile(data []byte) ([]Entry, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	var sh fileShell
	if err := wire.Unmarshal(data, &sh, "peer cache file"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if sh.Magic != fileMagic {
		return nil, fmt.Errorf("%w: not an x0x peer cache file", ErrCorrupt)
	}
	if sh.Version == 0 {
		return nil, fmt.Errorf("%w: format version missing", ErrCorrupt)
	}
	if sh.Version != fileVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads version %d", ErrUnsupportedVersion, sh.Version, fileVersion)
	}
	var body fileBody
	if err := wire.Unmarshal(sh.Body, &body, "peer cache body"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if len(body.Entries) > HardMaxEntries {
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrCorrupt, len(body.Entries), HardMaxEntries)
	}
	type key struct {
		peer identity.PeerID
		addr string
	}
	seen := make(map[key]struct{}, len(body.Entries))
	out := make([]Entry, len(body.Entries))
	for i, fe := range body.Entries {
		e := &out[i]
		switch {
		case len(fe.Peer) != identity.IDSize:
			return nil, fmt.Errorf("%w: entry %d: peer ID is %d bytes", ErrCorrupt, i, len(fe.Peer))
		case fe.Addr == "" || len(fe.Addr) > MaxAddrLen:
			return nil, fmt.Errorf("%w: entry %d: address length %d not in 1..%d", ErrCorrupt, i, len(fe.Addr), MaxAddrLen)
		case fe.RTT < 0 || fe.RTT > int64(MaxRTT):
			return nil, fmt.Errorf("%w: entry %d: RTT %d ns out of range", ErrCorrupt, i, fe.RTT)
		}
		copy(e.Peer[:], fe.Peer)
		if e.Peer.IsZero() {
			return nil, fmt.Errorf("%w: entry %d: zero peer ID", ErrCorrupt, i)
		}
		k := key{e.Peer, fe.Addr}
		if _, dup := seen[k]; dup {
			return nil, fmt.Errorf("%w: entry %d: duplicate peer and address", ErrCorrupt, i)
		}
		seen[k] = struct{}{}
		e.Addr, e.Successes, e.Failures, e.RTT = fe.Addr, fe.Successes, fe.Failures, time.Duration(fe.RTT)
		e.Services = fe.Services
		if fe.LastSeen != 0 {
			e.LastSeen = time.Unix(0, fe.LastSeen)
		}
	}
	return out, nil
}

// readFile reads and decodes path; a missing file is an empty cache.
func readFile(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, wire.MaxMessageSize+1))
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	if len(data) > wire.MaxMessageSize {
		return nil, &FileError{Path: path, Err: fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, wire.MaxMessageSize)}
	}
	entries, err := decodeFile(data)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	return entries, nil
}

// moveAside renames a bad file to path.corrupt (or .corrupt.N), never
// overwriting an existing file: it hard-links the new name first.
func moveAside(path string) (string, error) {
	for i := range 10 {
		dst := path + ".corrupt"
		if i > 0 {
			dst = fmt.Sprintf("%s.corrupt.%d", path, i)
		}
		err := os.Link(path, dst)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := os.Remove(path); err != nil {
			return "", err
		}
		return dst, atomicfile.SyncDir(filepath.Dir(path))
	}
	return "", fmt.Errorf("%s.corrupt through .corrupt.9 all exist", path)
}

// writeAtomic replaces path with data: temporary file in the same
// directory, write, fsync, rename, fsync of the directory; mode 0600. The
// directory is created (0700) if missing.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Replace(path, data, 0o600)
}
