package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/paycenter/paycenter/server/internal/metrics"
	"github.com/paycenter/paycenter/server/internal/pgdb"
	"github.com/paycenter/paycenter/server/internal/secret"
	"github.com/paycenter/paycenter/server/internal/server"
)

// serveCommand is the hidden command that runs only paycenter's server, in a process of its
// own, so that its CPU time is the server's alone.
const serveCommand = "serve"

// Secrets go to the child through its environment, not its command line.
const (
	envAdminKey   = "BENCHPAYMENTS_ADMIN_KEY"
	envMasterKeys = "BENCHPAYMENTS_MASTER_KEYS"
)

// serveMain is the child: it serves on 127.0.0.1:0 as `paycenter serve` would (production
// defaults: INFO logs of every RPC, real channel adapters, default webhook schedule, first
// channel check after 10s), prints "ready <url>" on stdout, and stops when its stdin closes
// (the parent is done or gone). SIGUSR1 starts the CPU profile, SIGUSR2 writes it.
func serveMain(args []string) error {
	server.TuneGC()
	fs := flag.NewFlagSet(serveCommand, flag.ContinueOnError)
	dbURL := fs.String("db", "", "database URL")
	pool := fs.Int("pool", 20, "database connections")
	logLevel := fs.String("log-level", "info", "log level")
	cpuProfile := fs.String("cpuprofile", "", "CPU profile file (started by SIGUSR1, written on SIGUSR2)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	keyring, err := secret.ParseKeyring(os.Getenv(envMasterKeys))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the parent closes our stdin to stop us; EOF also comes if it dies
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	stopSignals := make(chan os.Signal, 1)
	signal.Notify(stopSignals, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-stopSignals
		cancel()
	}()
	if *cpuProfile != "" {
		stopProfile := profileOnSignals(*cpuProfile, logger)
		defer stopProfile()
	}

	db, err := pgdb.Open(ctx, *dbURL, *pool)
	if err != nil {
		return err
	}
	defer db.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	srv, err := server.New(server.Config{
		PublicURL:       url,
		WorkerInterval:  time.Second,
		DB:              db,
		DatabaseURL:     *dbURL,
		Logger:          logger,
		Registry:        metrics.NewRegistry(),
		AdminKeys:       []string{os.Getenv(envAdminKey)},
		Keyring:         keyring,
		MaxRequestBytes: 1 << 20,
		ShutdownTimeout: 10 * time.Second,
		// The benchmark proves the books itself, afterwards: a periodic check (the first a
		// minute after start) would scan every transfer inside a window of -duration 1m.
		InvariantInterval: 24 * time.Hour,
	})
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Printf("ready %s\n", url)
	return srv.Serve(ctx, ln)
}

// profileOnSignals profiles the CPU between SIGUSR1 and SIGUSR2 (or the returned stop).
func profileOnSignals(path string, logger *slog.Logger) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	finished := make(chan struct{})
	var f *os.File
	end := func() {
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
			f = nil
		}
	}
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				end()
				return
			case s := <-sigs:
				switch {
				case s == syscall.SIGUSR1 && f == nil:
					var err error
					if f, err = os.Create(path); err != nil {
						logger.Error("cpu profile", "error", err)
						f = nil
						continue
					}
					if err := pprof.StartCPUProfile(f); err != nil {
						logger.Error("cpu profile", "error", err)
						f.Close()
						f = nil
					}
				case s == syscall.SIGUSR2:
					end()
				}
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
		<-finished
	}
}

// child is the server process, seen from the load process.
type child struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	url     string
	logPath string
	exited  chan struct{}
	waitErr error
}

// startChild re-executes this binary as the server on dbURL and waits until it listens.
func startChild(ctx context.Context, c config, dbURL, adminKey, masterKeys, logPath string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	args := []string{serveCommand, "-db", dbURL, "-pool", fmt.Sprint(c.pool), "-log-level", c.logLevel}
	if c.cpuProfile != "" {
		p, err := filepath.Abs(c.cpuProfile)
		if err != nil {
			return nil, err
		}
		args = append(args, "-cpuprofile", p)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), envAdminKey+"="+adminKey, envMasterKeys+"="+masterKeys)
	cmd.Stderr = logFile
	// The server must not outlive the benchmark, even if this process is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start server process: %w", err)
	}
	ch := &child{cmd: cmd, stdin: stdin, logPath: logPath, exited: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if url, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				select {
				case ready <- url:
				default:
				}
			}
		}
		ch.waitErr = cmd.Wait()
		logFile.Close()
		close(ch.exited)
	}()
	select {
	case ch.url = <-ready:
		return ch, nil
	case <-ch.exited:
		return nil, fmt.Errorf("server process exited during start-up (%v): %s", ch.waitErr, tail(logPath, 20))
	case <-time.After(60 * time.Second):
	case <-ctx.Done():
	}
	ch.kill()
	return nil, fmt.Errorf("server process did not start listening: %s", tail(logPath, 20))
}

func (ch *child) pid() int { return ch.cmd.Process.Pid }

// signal sends sig to the server process (profile control).
func (ch *child) signal(sig os.Signal) { _ = ch.cmd.Process.Signal(sig) }

// stop asks the server to shut down gracefully and returns the CPU time it used over its
// whole life (from the kernel's rusage of the reaped child).
func (ch *child) stop() (time.Duration, error) {
	ch.stdin.Close()
	select {
	case <-ch.exited:
	case <-time.After(30 * time.Second):
		ch.kill()
		return 0, errors.New("server process did not stop within 30s: killed")
	}
	var total time.Duration
	if ru, ok := ch.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		total = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if ch.waitErr != nil {
		return total, fmt.Errorf("server process: %v: %s", ch.waitErr, tail(ch.logPath, 20))
	}
	return total, nil
}

func (ch *child) kill() {
	_ = ch.cmd.Process.Kill()
	<-ch.exited
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
