package keystore

import (
	"errors"
	"github.com/saorsa-labs/x0x-go/core/internal/atomicfile"
	"io"
	"io/fs"
	"os"
	"runtime"
)

const (
	fileMode = 0o600
	dirMode  = 0o700
)

// checkPrivateMode refuses group/other access. Windows has no such bits.
func checkPrivateMode(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fileErr(path, ErrPermissions, "not a regular file (%v)", fi.Mode().Type())
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return fileErr(path, ErrPermissions, "mode %04o gives group/other access; it must be 0600", fi.Mode().Perm())
	}
	return nil
}

// readPrivate reads a small private file after checking that it is a
// regular file accessible only by its owner. A missing file is ErrNotFound.
// The file is only read, never modified.
func readPrivate(path string, limit int64) ([]byte, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fileErr(path, ErrNotFound, "")
	}
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	if err := checkPrivateMode(path, fi); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	defer f.Close()
	fi2, err := f.Stat()
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	if !os.SameFile(fi, fi2) {
		return nil, fileErr(path, ErrPermissions, "file was replaced while being opened")
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	if int64(len(data)) > limit {
		return nil, fileErr(path, ErrCorrupt, "larger than %d bytes", limit)
	}
	return data, nil
}

// errExists is returned by writeAtomic(replace=false) when path exists.
var errExists = atomicfile.ErrExists

// writeAtomic writes data to path with mode 0600, crash-safely. With
// replace=false an existing path is never touched (errExists).
func writeAtomic(path string, data []byte, replace bool) error {
	if replace {
		return atomicfile.Replace(path, data, fileMode)
	}
	return atomicfile.Create(path, data, fileMode)
}

// ensureDir creates dir (and missing parents) with mode 0700 and refuses an
// existing directory that group or other can write to.
func ensureDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return &FileError{Path: dir, Err: err}
		}
		// MkdirAll applies the umask; make the final directory exactly 0700.
		if err := os.Chmod(dir, dirMode); err != nil {
			return &FileError{Path: dir, Err: err}
		}
		fi, err = os.Stat(dir)
	}
	if err != nil {
		return &FileError{Path: dir, Err: err}
	}
	if !fi.IsDir() {
		return fileErr(dir, ErrInvalidParams, "not a directory")
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o022 != 0 {
		return fileErr(dir, ErrPermissions, "data directory mode %04o is writable by group/other", fi.Mode().Perm())
	}
	return nil
}
