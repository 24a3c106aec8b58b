package cpu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrSpec marks a --cpu or --cgroup value that cannot be used.
var ErrSpec = errors.New("cpu")

// clockTick is USER_HZ, the unit of /proc/PID/stat's times. It is 100 on
// every Linux architecture Go supports (the kernel's ABI fixes it,
// whatever CONFIG_HZ is), so it is not read through sysconf (cgo).
const clockTick = 10 * time.Millisecond

// maxStat bounds what is read of a stat file; real ones are < 1 KiB.
const maxStat = 64 << 10

// Source is one NAME's processes or cgroup.
type Source struct {
	Name string
	// PIDs are read from /proc/PID/stat: utime+stime of the process plus
	// cutime+cstime of its waited-for children (nginx's exited workers).
	PIDs []int
	// Cgroup is a cgroup v2 directory (or its cpu.stat file).
	Cgroup string
}

// ParsePIDs reads NAME=PID[,PID...].
func ParsePIDs(s string) (Source, error) {
	name, list, ok := strings.Cut(s, "=")
	if !ok || name == "" || list == "" {
		return Source{}, fmt.Errorf("%w: --cpu %q is not NAME=PID[,PID...]", ErrSpec, s)
	}
	src := Source{Name: name}
	for _, p := range strings.Split(list, ",") {
		pid, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || pid <= 0 {
			return Source{}, fmt.Errorf("%w: --cpu %q: %q is not a process id", ErrSpec, s, p)
		}
		src.PIDs = append(src.PIDs, pid)
	}
	return src, nil
}

// ParseCgroup reads NAME=PATH.
func ParseCgroup(s string) (Source, error) {
	name, path, ok := strings.Cut(s, "=")
	if !ok || name == "" || path == "" {
		return Source{}, fmt.Errorf("%w: --cgroup %q is not NAME=PATH", ErrSpec, s)
	}
	return Source{Name: name, Cgroup: path}, nil
}

// Read returns the source's CPU time so far.
func (s Source) Read() (time.Duration, error) {
	var total time.Duration
	for _, pid := range s.PIDs {
		d, err := ReadPID(pid)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %v", ErrSpec, s.Name, err)
		}
		total += d
	}
	if s.Cgroup != "" {
		d, err := ReadCgroup(s.Cgroup)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %v", ErrSpec, s.Name, err)
		}
		total += d
	}
	return total, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, maxStat)
	n, err := f.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// ReadPID returns utime+stime+cutime+cstime of /proc/PID/stat.
func ReadPID(pid int) (time.Duration, error) {
	b, err := readBounded("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return ParseStat(b)
}

// ParseStat reads the four CPU times of a /proc/PID/stat line. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func ParseStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	// After ") ": field 3 (state) is index 0, utime (field 14) index 11.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, errors.New("stat: too few fields")
	}
	var ticks int64
	for _, s := range f[11:15] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("stat: bad time %q", s)
		}
		ticks += v
	}
	return time.Duration(ticks) * clockTick, nil
}

// ReadCgroup returns usage_usec of a cgroup v2 cpu.stat (path is the
// cgroup's directory or the file itself).
func ReadCgroup(path string) (time.Duration, error) {
	if filepath.Base(path) != "cpu.stat" {
		path = filepath.Join(path, "cpu.stat")
	}
	b, err := readBounded(path)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %v", err)
	}
	return ParseCPUStat(b)
}

// ParseCPUStat reads usage_usec from a cgroup v2 cpu.stat.
func ParseCPUStat(b []byte) (time.Duration, error) {
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, " ")
		if ok && k == "usage_usec" {
			us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || us < 0 {
				return 0, fmt.Errorf("cpu.stat: bad usage_usec %q", v)
			}
			return time.Duration(us) * time.Microsecond, nil
		}
	}
	return 0, errors.New("cpu.stat: no usage_usec (not a cgroup v2 cpu.stat)")
}

// Meter reads a set of sources together.
type Meter struct {
	Sources []Source
}

// Names returns the sources' names in order.
func (m *Meter) Names() []string {
	out := make([]string, len(m.Sources))
	for i, s := range m.Sources {
		out[i] = s.Name
	}
	return out
}

// Check reads every source once, strictly, so bad input fails before
// anything runs.
func (m *Meter) Check() error {
	for _, s := range m.Sources {
		if _, err := s.Read(); err != nil {
			return err
		}
	}
	return nil
}

// key is one process or cgroup of one source.
type key struct {
	name   string
	pid    int
	cgroup string
}

// Reading is every process's and cgroup's CPU time at one instant.
type Reading map[key]time.Duration

// Sample reads every process and cgroup. A process that has exited since
// Check (a PostgreSQL backend, an nginx worker replaced) is left out of
// the reading rather than failing a campaign half-way; its CPU from then
// on is lost (see Delta). A cgroup that cannot be read is an error.
func (m *Meter) Sample() (Reading, error) {
	out := Reading{}
	for _, s := range m.Sources {
		for _, pid := range s.PIDs {
			d, err := ReadPID(pid)
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrSpec, s.Name, err)
			}
			out[key{name: s.Name, pid: pid}] = d
		}
		if s.Cgroup != "" {
			d, err := ReadCgroup(s.Cgroup)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrSpec, s.Name, err)
			}
			out[key{name: s.Name, cgroup: s.Cgroup}] = d
		}
	}
	return out, nil
}

// Delta sums after-before by name, process by process: a process present
// in only one reading (it exited during the run) counts zero, and a
// reading that went down counts zero rather than negative.
func Delta(before, after Reading) map[string]time.Duration {
	out := map[string]time.Duration{}
	for k, a := range after {
		b, ok := before[k]
		out[k.name] += 0
		if ok && a > b {
			out[k.name] += a - b
		}
	}
	return out
}

// Ledger attributes measured CPU to the runs it was measured around: each
// run charges every name's CPU of that run to the run's target, together
// with the run's requests. Because runs are interleaved round by round,
// a label such as postgres is charged, in each run, for the requests of
// the target that ran then.
type Ledger struct {
	names   []string
	targets map[string]*account
	all     account
}

type account struct {
	requests uint64
	cpu      map[string]time.Duration
}

// NewLedger returns an empty ledger for the given source names.
func NewLedger(names []string) *Ledger {
	return &Ledger{names: names, targets: map[string]*account{}, all: account{cpu: map[string]time.Duration{}}}
}

// Add charges one run of target: its requests and each name's CPU.
func (l *Ledger) Add(target string, requests uint64, cpu map[string]time.Duration) {
	a := l.targets[target]
	if a == nil {
		a = &account{cpu: map[string]time.Duration{}}
		l.targets[target] = a
	}
	a.requests += requests
	l.all.requests += requests
	for k, d := range cpu {
		a.cpu[k] += d
		l.all.cpu[k] += d
	}
}

func perRequest(d time.Duration, n uint64) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// Target returns target's CPU µs per request, all names together, and by
// name. ok is false when the target never ran.
func (l *Ledger) Target(target string) (total float64, byName map[string]float64, ok bool) {
	a := l.targets[target]
	if a == nil {
		return 0, nil, false
	}
	var sum time.Duration
	byName = map[string]float64{}
	for _, k := range l.names {
		if _, seen := byName[k]; seen {
			continue
		}
		sum += a.cpu[k]
		byName[k] = round2(perRequest(a.cpu[k], a.requests))
	}
	return round2(perRequest(sum, a.requests)), byName, true
}

// Label returns name's CPU µs per request over every run of every target.
func (l *Ledger) Label(name string) float64 {
	return round2(perRequest(l.all.cpu[name], l.all.requests))
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
