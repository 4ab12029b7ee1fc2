package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
)

// maxBundle bounds an identity bundle read from a file (a sealed agent
// key is a few KiB).
const maxBundle = 1 << 20

// passphrase returns the passphrase of identity export and import: the
// contents of file (without a final line break) or $X0X_PASSPHRASE. x0x
// does not prompt for it: echo-free terminal input needs more than the
// standard library.
func (c *cli) passphrase(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", failed("the passphrase: %v", err)
		}
		p := strings.TrimRight(string(b), "\r\n")
		if p == "" {
			return "", failed("the passphrase file %s is empty", file)
		}
		return p, nil
	}
	if p := c.env("X0X_PASSPHRASE"); p != "" {
		return p, nil
	}
	return "", &exitError{code: exitUsage, msg: "a passphrase is needed: the bundle is sealed with it",
		hint: "give it with --passphrase-file FILE or in $X0X_PASSPHRASE (x0x does not prompt for it)"}
}

func cmdIdentityExport(c *cli, fs *flag.FlagSet) func([]string) error {
	out := fs.String("out", "", "write the bundle (base64) to `FILE`, mode 0600 (default stdout)")
	passFile := fs.String("passphrase-file", "", "read the passphrase from `FILE` (default $X0X_PASSPHRASE)")
	return resultCmd(c, 0, 0, func([]string) (localapi.ExportResponse, error) {
		e, err := sealedCall(c, *passFile, func(ctx context.Context, cl *apiclient.Client, pass string) (localapi.ExportResponse, error) {
			return cl.ExportIdentity(ctx, pass)
		})
		if err == nil && *out != "" {
			if err := writeNew(*out, []byte(e.BundleB64+"\n")); err != nil {
				return e, failed("%v", err)
			}
		}
		return e, err
	}, func(e localapi.ExportResponse) error {
		if *out != "" {
			return c.printf("agent %s exported to %s\n", e.AgentID, *out)
		}
		return c.println(e.BundleB64)
	})
}

// sealedCall makes one API call, f, with the passphrase of identity
// export and import (c.passphrase; see call).
func sealedCall[T any](c *cli, passFile string, f func(ctx context.Context, cl *apiclient.Client, pass string) (T, error)) (T, error) {
	pass, err := c.passphrase(passFile)
	if err != nil {
		var zero T
		return zero, err
	}
	return call(c, func(ctx context.Context, cl *apiclient.Client) (T, error) { return f(ctx, cl, pass) })
}

// writeNew writes a private file (mode 0600), replacing one that exists:
// an existing regular file is made 0600 before it is truncated and
// written (os.OpenFile's mode applies only to a file it creates).
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	err = func() error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			if fi.Mode().Perm() != 0o600 {
				if err := f.Chmod(0o600); err != nil {
					return fmt.Errorf("making %s private (mode 0600): %w", path, err)
				}
			}
			if err := f.Truncate(0); err != nil {
				return err
			}
		}
		_, err = f.Write(b)
		return err
	}()
	if err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func cmdIdentityImport(c *cli, fs *flag.FlagSet) func([]string) error {
	replace := fs.Bool("replace", false, "replace the data directory's agent key (it is kept beside the new one)")
	passFile := fs.String("passphrase-file", "", "read the passphrase from `FILE` (default $X0X_PASSPHRASE)")
	return resultCmd(c, 1, 1, func(args []string) (localapi.ImportResponse, error) {
		b64, err := c.readBundle(args[0])
		if err != nil {
			return localapi.ImportResponse{}, err
		}
		return sealedCall(c, *passFile, func(ctx context.Context, cl *apiclient.Client, pass string) (localapi.ImportResponse, error) {
			return cl.ImportIdentity(ctx, localapi.ImportRequest{BundleB64: b64, Passphrase: pass, Replace: *replace})
		})
	}, func(res localapi.ImportResponse) error {
		if !res.RestartRequired {
			return c.printf("agent %s is this daemon's agent already\n", res.AgentID)
		}
		fmt.Fprintf(c.stdout, "agent %s imported: the daemon becomes it at its next start (x0x daemon stop && x0x daemon start)\n", res.AgentID)
		if res.PreviousKeyFile != "" {
			fmt.Fprintf(c.stdout, "the previous agent key is kept in %s\n", res.PreviousKeyFile)
		}
		return nil
	})
}

// readBundle returns the identity bundle in name (- for stdin) in base64:
// the file holds it in base64 (what export writes) or its raw bytes.
func (c *cli) readBundle(name string) (string, error) {
	var r io.Reader = c.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return "", failed("%v", err)
		}
		defer f.Close()
		r = f
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxBundle+1))
	if err != nil {
		return "", failed("%s: %v", name, err)
	}
	if len(raw) > maxBundle {
		return "", failed("%s: over %d bytes: not an identity bundle", name, maxBundle)
	}
	b64 := string(bytes.TrimSpace(raw))
	if _, err := base64.StdEncoding.DecodeString(b64); err != nil {
		b64 = base64.StdEncoding.EncodeToString(raw)
	}
	return b64, nil
}
