package main

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinSelf moves every thread of this process to one CPU. sched_setaffinity
// acts on a single thread, and the Go runtime already runs several, so each
// is set in turn; threads started later inherit the mask of the thread that
// starts them. A second pass catches threads started during the first.
func pinSelf(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	for range 2 {
		entries, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, e := range entries {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return err
			}
		}
	}
	return nil
}
