package main

import (
	"os"
	"strconv"
	"strings"

	"github.com/novashop/edge/internal/stack"
)

// cpuArgs are loadgen's --cpu flags for every serving process of the
// stack, so compare and capacity report what each set-up costs per
// shopper request with everything it needs counted: the edge, nginx
// (master and workers), the origins, PostgreSQL (postmaster and its
// backends), Redis and the worker. The process lists are taken now: the
// origins open their whole PostgreSQL pool at start, so the backends that
// serve the campaign already exist.
func cpuArgs(l *stack.Local) []string {
	children := childrenByParent()
	var args []string
	add := func(name string, pids ...int) {
		var all []string
		for _, p := range pids {
			for _, d := range withDescendants(p, children) {
				all = append(all, strconv.Itoa(d))
			}
		}
		if len(all) > 0 {
			args = append(args, "--cpu", name+"="+strings.Join(all, ","))
		}
	}
	if l.Edge != nil {
		add("edge", l.Edge.Pid())
	}
	if l.Nginx != nil {
		add("nginx", l.Nginx.Pid())
	}
	var origins []int
	for _, o := range l.Origins {
		origins = append(origins, o.Pid())
	}
	add("origins", origins...)
	if l.PG != nil {
		add("postgres", l.PG.Pid())
	}
	if l.Redis != nil {
		add("redis", l.Redis.Pid())
	}
	if l.Worker != nil {
		add("worker", l.Worker.Pid())
	}
	return args
}

// childrenByParent maps every process id to its children's, from /proc.
func childrenByParent() map[int][]int {
	out := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			out[pp] = append(out[pp], pid)
		}
	}
	return out
}

// withDescendants returns pid and all its descendants.
func withDescendants(pid int, children map[int][]int) []int {
	out := []int{pid}
	for i := 0; i < len(out) && i < 4096; i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}
