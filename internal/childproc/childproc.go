// Package childproc starts the helper processes the measurement tools
// drive over their standard input and output (x0x-natlab's agents in
// network namespaces, x0x-swimload's agents).
package childproc

import (
	"bufio"
	"io"
	"os"
	"os/exec"
)

// maxLine bounds one line the child writes (a JSON reply or report).
const maxLine = 4 << 20

// Start starts cmd with its standard error passed through, and returns a
// writer to its standard input and a line scanner over its standard
// output (lines up to 4 MiB). The caller owns the process: it closes
// stdin to ask the child to stop and waits for (or kills) cmd.
func Start(cmd *exec.Cmd) (stdin io.WriteCloser, stdout *bufio.Scanner, err error) {
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	return in, sc, nil
}
