// Package cpu reads the CPU time of processes (/proc/PID/stat, children
// included) and cgroups (cgroup v2 cpu.stat usage_usec) so that loadgen
// can say what a whole set-up costs per request, not only how fast it
// answers: a proxy that is fast because it burns every core is not cheap.
package cpu
