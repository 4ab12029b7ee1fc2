// Package atomicfile writes small files crash-safely: a temporary file in
// the same directory is written and fsynced, moved into place, and the
// directory is fsynced, so a reader sees the old content or the new, never
// a mix, even after a crash or power loss.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// ErrExists is returned (wrapped) by Create when the path already exists.
var ErrExists = fs.ErrExist

// Replace writes data to path with the given mode, atomically replacing any
// existing file.
func Replace(path string, data []byte, mode fs.FileMode) error {
	return write(path, data, mode, true)
}

// Create writes data to path with the given mode only if path does not
// exist; an existing path is never touched and the error wraps ErrExists.
// The final move is a hard link, which fails if path exists; on a file
// system without hard links it falls back to check-then-rename, which can
// race with another process creating the file at the same moment.
func Create(path string, data []byte, mode fs.FileMode) error {
	return write(path, data, mode, false)
}

func write(path string, data []byte, mode fs.FileMode, replace bool) (err error) {
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
	if err = f.Chmod(mode); err == nil {
		if _, err = f.Write(data); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if replace {
		if err = os.Rename(tmp, path); err != nil {
			return err
		}
		return SyncDir(dir)
	}
	linkErr := os.Link(tmp, path)
	switch {
	case linkErr == nil:
		if err = os.Remove(tmp); err != nil {
			return err
		}
	case errors.Is(linkErr, fs.ErrExist):
		return fmt.Errorf("%s: %w", path, ErrExists)
	default:
		if _, statErr := os.Lstat(path); statErr == nil {
			return fmt.Errorf("%s: %w", path, ErrExists)
		} else if !errors.Is(statErr, fs.ErrNotExist) {
			return statErr
		}
		if err = os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return SyncDir(dir)
}

// SyncDir makes a rename in dir durable. Windows cannot fsync directories.
func SyncDir(dir string) error {
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
