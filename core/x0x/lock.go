package x0x

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// LockFile is the name, in the data directory, of the file an agent locks
// while it runs, so that a second agent on the same directory (which would
// share its keys, task lists and groups) is refused at once.
const LockFile = "agent.lock"

var errLocked = errors.New("locked")

// lockDataDir locks dir for this agent; the caller closes the returned
// file to release it. Errors: ErrDataDirInUse, I/O errors.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("x0x: lock %s: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%w: %s is locked by another running agent (one agent per data directory)", ErrDataDirInUse, dir)
		}
		return nil, fmt.Errorf("x0x: lock %s: %w", path, err)
	}
	return f, nil
}
