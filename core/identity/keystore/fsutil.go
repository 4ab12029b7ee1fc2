package keystore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
var errExists = fs.ErrExist

// writeAtomic writes data to path with mode 0600: a temporary file in the
// same directory is written and fsynced, then moved into place, then the
// directory is fsynced. With replace=false an existing path is never
// touched: the move is a hard link, which fails if path exists (errExists).
// On a file system without hard links it falls back to check-then-rename,
// which can race with another process creating the file at the same moment.
func writeAtomic(path string, data []byte, replace bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(fileMode); err != nil {
		f.Close()
		return err
	}
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if replace {
		if err = os.Rename(tmp, path); err != nil {
			return err
		}
	} else {
		linkErr := os.Link(tmp, path)
		switch {
		case linkErr == nil:
			if err = os.Remove(tmp); err != nil {
				return err
			}
		case errors.Is(linkErr, fs.ErrExist):
			return fmt.Errorf("%s: %w", path, errExists)
		default:
			if _, statErr := os.Lstat(path); statErr == nil {
				return fmt.Errorf("%s: %w", path, errExists)
			} else if !errors.Is(statErr, fs.ErrNotExist) {
				return statErr
			}
			if err = os.Rename(tmp, path); err != nil {
				return err
			}
		}
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable. Windows cannot fsync directories.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
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
