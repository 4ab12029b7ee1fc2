package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
)

// Files x0x daemon start keeps in the data directory.
const (
	pidFileName = "x0xd.pid"
	logFileName = "x0xd.log"
)

// How long daemon start waits for x0xd to be ready, and daemon stop for
// it to exit.
const (
	startWait = 30 * time.Second
	stopWait  = 15 * time.Second
)

// daemonInfo is the JSON of the daemon commands: x0x's view of the daemon
// (its process and files) and the API's /health when it answers.
type daemonInfo struct {
	Running  bool             `json:"running"`
	PID      int              `json:"pid,omitempty"`
	HTTPAddr string           `json:"http_addr"`
	DataDir  string           `json:"data_dir"`
	LogFile  string           `json:"log_file,omitempty"`
	Health   *localapi.Health `json:"health,omitempty"`
}

// readPID returns the process ID in the pid file (0 if there is none).
func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// running reports whether pid is a live x0xd.
func running(pid int) bool { return pid > 0 && alive(pid) && isX0xd(pid) }

// findX0xd returns the x0xd executable: flagPath, the one next to this
// executable, or the one in $PATH.
func findX0xd(flagPath string) (string, error) {
	if flagPath != "" {
		if _, err := os.Stat(flagPath); err != nil {
			return "", failed("--x0xd: %v", err)
		}
		return flagPath, nil
	}
	name := "x0xd"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", &exitError{code: exitFailed, msg: "cannot find x0xd",
		hint: "put it next to the x0x executable or in $PATH, or pass --x0xd PATH"}
}

func cmdDaemonStart(c *cli, fs *flag.FlagSet) func([]string) error {
	bin := fs.String("x0xd", "", "the x0xd executable `PATH` (default: next to x0x, else in $PATH)")
	var pass []string
	for _, name := range []string{"listen", "bootstrap", "network", "role", "passphrase-file", "http"} {
		fs.Func(name, "`VALUE`: x0xd's -"+name, func(v string) error {
			pass = append(pass, "-"+name, v)
			return nil
		})
	}
	fs.BoolFunc("v", "x0xd's -v (debug logging)", func(v string) error {
		pass = append(pass, "-v="+v)
		return nil
	})
	return func(args []string) error {
		if len(args) > 0 && args[0] != "--" {
			return usageError("unexpected arguments %q (x0xd's other flags go after --)", args)
		}
		if len(args) > 0 {
			pass = append(pass, args[1:]...)
		}
		dir, err := c.dataDir()
		if err != nil {
			return failed("%v", err)
		}
		if dir, err = filepath.Abs(dir); err != nil {
			return failed("%v", err)
		}
		return c.startDaemon(*bin, dir, pass)
	}
}

func (c *cli) startDaemon(binFlag, dir string, pass []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return failed("the data directory: %v", err)
	}
	pidPath := filepath.Join(dir, pidFileName)
	if pid := readPID(pidPath); running(pid) {
		return &exitError{code: exitFailed, msg: fmt.Sprintf("x0xd is running for %s already (pid %d)", dir, pid),
			hint: "x0x daemon stop stops it"}
	}
	bin, err := findX0xd(binFlag)
	if err != nil {
		return err
	}
	// -http is --api when that is given; otherwise x0xd's own setting
	// (its default is x0x's, 127.0.0.1:12600) and the ready line says
	// where it listens.
	httpAddr := c.hostPort()
	argv := []string{"-data-dir", dir}
	if c.apiSet && !passes(pass, "http") {
		argv = append(argv, "-http", httpAddr)
	}
	argv = append(argv, pass...)

	logPath := filepath.Join(dir, logFileName)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return failed("the log file: %v", err)
	}
	offset, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		logf.Close()
		return failed("the log file: %v", err)
	}
	cmd := exec.Command(bin, argv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = detached()
	err = cmd.Start()
	logf.Close() // the daemon has its own descriptor
	if err != nil {
		return failed("starting x0xd: %v", err)
	}
	p := cmd.Process
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(p.Pid)+"\n"), 0o600); err != nil {
		_ = terminate(p.Pid)
		return failed("the pid file: %v", err)
	}
	abandon := func() {
		_ = terminate(p.Pid)
		os.Remove(pidPath)
	}

	// Wait for the ready line in the log.
	var ready string
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(startWait)
	for ready == "" {
		select {
		case <-c.ctx.Done():
			abandon()
			return c.ctx.Err()
		case <-tick.C:
		}
		ready = readyLine(logPath, offset)
		if ready != "" {
			break
		}
		if done, how := exited(p); done {
			os.Remove(pidPath)
			return &exitError{code: exitFailed, msg: fmt.Sprintf("x0xd exited (%s) before it was ready; the end of %s:\n%s", how, logPath, logTail(logPath, offset, 15))}
		}
		if time.Now().After(deadline) {
			abandon()
			return &exitError{code: exitFailed, msg: fmt.Sprintf("x0xd was not ready within %v (stopped it); the end of %s:\n%s", startWait, logPath, logTail(logPath, offset, 15))}
		}
	}
	pid := p.Pid
	_ = p.Release() // sets p.Pid to -1
	if a := readyField(ready, "http"); a != "" {
		httpAddr = a
	} else if a := readyField(ready, "https"); a != "" {
		httpAddr = "https://" + a
	}
	info := daemonInfo{Running: true, PID: pid, HTTPAddr: httpAddr, DataDir: dir, LogFile: logPath}
	ctx, cancel := c.callContext()
	defer cancel()
	if cl, err := apiclient.NewChecked(httpAddr, "", c.httpClient()); err == nil {
		if h, err := cl.Health(ctx); err == nil {
			info.Health = &h
		}
	}
	return printResult(c, info, func(info daemonInfo) error {
		fmt.Fprintf(c.stdout, "x0xd started (pid %d)\n", pid)
		c.printDaemon(info, ready)
		if httpAddr != c.hostPort() && httpAddr != c.g.api {
			fmt.Fprintf(c.stdout, "its API is not at the default address: pass --api %s (or export X0X_API=%s)\n", httpAddr, httpAddr)
		}
		return nil
	})
}

// passes reports whether the pass-through flags set x0xd's flag name.
func passes(pass []string, name string) bool {
	for _, a := range pass {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// openAt opens the file path for reading from offset on.
func openAt(path string, offset int64) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readyLine returns x0xd's "x0xd ready ..." line if the log has it after
// offset.
func readyLine(path string, offset int64) string {
	f, err := openAt(path, offset)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "x0xd ready") {
			return sc.Text()
		}
	}
	return ""
}

// readyField returns the value of key=value in the ready line.
func readyField(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// logTail returns the last n lines the log has after offset.
func logTail(path string, offset int64, n int) string {
	f, err := openAt(path, offset)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// printDaemon prints what x0x knows of a running daemon.
func (c *cli) printDaemon(info daemonInfo, ready string) {
	tw := c.tabs()
	fmt.Fprintf(tw, "http\t%s\n", info.HTTPAddr)
	if h := info.Health; h != nil {
		fmt.Fprintf(tw, "agent\t%s\nmachine\t%s\nudp\t%s\nnat\t%s\nrole\t%s\npeers\t%d\ntopics\t%d\nuptime\t%v\nversion\t%s\n",
			h.AgentID, h.MachineID, h.UDPAddr, h.NATType, h.Role, h.Peers, h.Topics,
			(time.Duration(h.UptimeSeconds) * time.Second).Round(time.Second), h.Version)
	} else if ready != "" {
		fmt.Fprintf(tw, "agent\t%s\nmachine\t%s\nudp\t%s\n", readyField(ready, "agent"), readyField(ready, "machine"), readyField(ready, "udp"))
	}
	if info.DataDir != "" {
		fmt.Fprintf(tw, "data dir\t%s\n", info.DataDir)
	}
	if info.LogFile != "" {
		fmt.Fprintf(tw, "log\t%s\n", info.LogFile)
	}
	tw.Flush()
}

func cmdDaemonStop(c *cli, fs *flag.FlagSet) func([]string) error {
	return argsCmd(0, 0, func(args []string) error {
		dir, err := c.dataDir()
		if err != nil {
			return failed("%v", err)
		}
		pidPath := filepath.Join(dir, pidFileName)
		pid := readPID(pidPath)
		if pid == 0 {
			return &exitError{code: exitUnreachable, msg: fmt.Sprintf("x0xd is not running for %s (no %s: it was not started by x0x daemon start)", dir, pidFileName)}
		}
		if !running(pid) {
			os.Remove(pidPath)
			return &exitError{code: exitUnreachable, msg: fmt.Sprintf("x0xd (pid %d) is not running; removed the stale %s", pid, pidPath)}
		}
		if err := terminate(pid); err != nil {
			return failed("stopping x0xd (pid %d): %v", pid, err)
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		deadline := time.Now().Add(stopWait)
		for running(pid) {
			if time.Now().After(deadline) {
				return failed("x0xd (pid %d) did not exit within %v of SIGTERM", pid, stopWait)
			}
			select {
			case <-c.ctx.Done():
				return c.ctx.Err()
			case <-tick.C:
			}
		}
		os.Remove(pidPath)
		return printResult(c, daemonInfo{PID: pid, HTTPAddr: c.hostPort(), DataDir: dir}, func(info daemonInfo) error {
			return c.printf("x0xd stopped (pid %d)\n", info.PID)
		})
	})
}

func cmdDaemonStatus(c *cli, fs *flag.FlagSet) func([]string) error {
	return argsCmd(0, 0, func(args []string) error {
		if err := c.checkAPI(); err != nil {
			return err
		}
		info := daemonInfo{HTTPAddr: c.hostPort()}
		if dir, err := c.dataDir(); err == nil {
			info.DataDir = dir
			if pid := readPID(filepath.Join(dir, pidFileName)); running(pid) {
				info.PID = pid
				info.LogFile = filepath.Join(dir, logFileName)
			}
		}
		ctx, cancel := c.callContext()
		defer cancel()
		h, err := apiclient.New(c.g.api, "", c.httpClient()).Health(ctx) // checkAPI checked the address
		if err != nil {
			if c.g.json {
				_ = c.printJSON(info)
			}
			if code, _, _ := c.classify(err); code != exitUnreachable {
				return err
			}
			reason := err.Error()
			var oe *net.OpError
			if errors.As(err, &oe) {
				reason = oe.Err.Error()
			}
			if info.PID != 0 {
				return &exitError{code: exitUnreachable, msg: fmt.Sprintf("x0xd (pid %d, data directory %s) is running but nothing answers at %s (%s)", info.PID, info.DataDir, info.HTTPAddr, reason),
					hint: "is it serving another -http address? pass --api ADDR; its log: " + info.LogFile}
			}
			return &exitError{code: exitUnreachable, msg: fmt.Sprintf("x0xd is not running: nothing answers at %s (%s)", info.HTTPAddr, reason), hint: "x0x daemon start starts it"}
		}
		info.Running, info.Health = true, &h
		return printResult(c, info, func(info daemonInfo) error {
			if info.PID != 0 {
				fmt.Fprintf(c.stdout, "x0xd is running (pid %d)\n", info.PID)
			} else {
				fmt.Fprintln(c.stdout, "x0xd is running")
				info.DataDir = "" // which directory the answering daemon uses is not known
			}
			c.printDaemon(info, "")
			return nil
		})
	})
}
