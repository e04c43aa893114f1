// Package cpustat reads CPU time from /proc for the benchmarks, which report CPU per
// operation: on a shared, noisy machine that is steadier than time.
package cpustat

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of the times in /proc (USER_HZ), normally 100 per second.
var clockTick = func() time.Duration {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if hz, perr := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && perr == nil && hz > 0 {
		return time.Second / time.Duration(hz)
	}
	return 10 * time.Millisecond
}()

// procTimes are the CPU fields of /proc/<pid>/stat: the process's own user and system time
// (all its threads, including ones that ended) and that of its reaped children.
type procTimes struct {
	ppid             int
	self, reapedKids time.Duration
}

func readProcStat(pid int) (procTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procTimes{}, err
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut at the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procTimes{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return procTimes{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
	num := func(k int) int64 { n, _ := strconv.ParseInt(f[k], 10, 64); return n }
	return procTimes{
		ppid:       int(num(1)),
		self:       time.Duration(num(11)+num(12)) * clockTick,
		reapedKids: time.Duration(num(13)+num(14)) * clockTick,
	}, nil
}

// ProcessCPU is the CPU time pid has used so far.
func ProcessCPU(pid int) (time.Duration, error) {
	t, err := readProcStat(pid)
	return t.self, err
}

// PostgresCPU is the CPU time of a PostgreSQL cluster so far: the postmaster, its live
// children (backends, checkpointer, WAL writer...) and the children it has reaped (ended
// sessions), which the kernel adds to its cutime/cstime. The sum only grows.
func PostgresCPU(postmaster int) (time.Duration, error) {
	if postmaster <= 0 {
		return 0, nil // no cluster of ours to watch
	}
	pm, err := readProcStat(postmaster)
	if err != nil {
		return 0, err
	}
	total := pm.self + pm.reapedKids
	kids, err := children(postmaster)
	for _, t := range kids {
		total += t.self + t.reapedKids
	}
	return total, err
}

// PostgresChildren counts the postmaster's children, ended sessions not yet reaped included.
func PostgresChildren(postmaster int) int {
	kids, _ := children(postmaster)
	return len(kids)
}

// children reads the CPU fields of pid's child processes.
func children(pid int) ([]procTimes, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []procTimes
	for _, e := range entries {
		if child, err := strconv.Atoi(e.Name()); err == nil && child != pid {
			if t, err := readProcStat(child); err == nil && t.ppid == pid { // else gone, or not a child
				out = append(out, t)
			}
		}
	}
	return out, nil
}

// PostmasterPID reads the postmaster's pid from its data directory.
func PostmasterPID(dataDir string) (int, error) {
	f, err := os.Open(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, fmt.Errorf("%s/postmaster.pid is empty", dataDir)
	}
	return strconv.Atoi(strings.TrimSpace(sc.Text()))
}

// SelfCPU is this process's CPU time so far (every thread; not its children).
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// MachineCPU returns the busy and total CPU time of the whole machine (all cores) so far,
// from the first line of /proc/stat.
func MachineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle int64
	for k, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if k >= 8 { // guest and guest_nice are already counted in user and nice
			break
		}
		sum += n
		if k == 3 || k == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(sum-idle) * clockTick, time.Duration(sum) * clockTick
}

// Snapshot is every CPU clock the benchmark reads, at one instant.
type Snapshot struct {
	At                 time.Time
	Server             time.Duration
	Postgres           time.Duration
	Load               time.Duration // this process
	MachineBusy, Total time.Duration
	PostgresErr        error
}

// TakeSnapshot reads the server process (pid, or none when 0), the cluster of postmaster (or
// none when 0), this process and the machine.
func TakeSnapshot(serverPID, postmaster int) (Snapshot, error) {
	s := Snapshot{At: time.Now(), Load: SelfCPU()}
	var err error
	if serverPID > 0 {
		if s.Server, err = ProcessCPU(serverPID); err != nil {
			return s, fmt.Errorf("server CPU: %w", err)
		}
	}
	if postmaster > 0 {
		s.Postgres, s.PostgresErr = PostgresCPU(postmaster)
	}
	s.MachineBusy, s.Total = MachineCPU()
	return s, nil
}
