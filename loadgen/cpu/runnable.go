package cpu

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxThreads bounds how many threads Runnable looks at per source, so a
// huge cgroup cannot make one settle window's check expensive.
const maxThreads = 4096

// Runnable reports whether any thread of the meter's sources is running or
// waiting for a CPU (state R in /proc/TID/stat). Settle asks it because a
// low CPU rate alone cannot tell a process that has finished its leftover
// work from one the scheduler is starving on a loaded machine: the starved
// one is runnable. A thread that cannot be read (it exited) counts as not
// runnable.
func (m *Meter) Runnable() bool {
	for _, s := range m.Sources {
		for _, pid := range s.PIDs {
			tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/stat")
			for i, p := range tasks {
				if i >= maxThreads {
					break
				}
				if statRunnable(p) {
					return true
				}
			}
		}
		if s.Cgroup != "" {
			dir := s.Cgroup
			if filepath.Base(dir) == "cpu.stat" {
				dir = filepath.Dir(dir)
			}
			b, err := readBounded(filepath.Join(dir, "cgroup.threads"))
			if err != nil {
				continue
			}
			for i, tid := range strings.Fields(string(b)) {
				if i >= maxThreads {
					break
				}
				if statRunnable("/proc/" + tid + "/stat") {
					return true
				}
			}
		}
	}
	return false
}

func statRunnable(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	return StatState(b) == 'R'
}

// StatState returns the state letter of a /proc/PID/stat line (field 3,
// after the command name, which may hold spaces and parentheses), or 0.
func StatState(b []byte) byte {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) || b[i+1] != ' ' {
		return 0
	}
	return b[i+2]
}
