// Package sched sets the CPU priority (nice) of work done ahead of need:
// spare sandboxes and spare shims, made on a machine of two cores beside
// the container start they are for, must not slow that start down.
package sched

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// Lowest is the nice value Background gives.
const Lowest = 19

// Background gives the calling goroutine's thread, and the processes it
// starts, the lowest CPU priority for the rest of the goroutine. Nice is a
// thread's, and children inherit it, so the goroutine keeps its thread to
// the end, and the Go runtime discards the thread then rather than reuse
// it with the priority still lowered.
func Background() {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, 0, Lowest)
}

// Nice returns the calling thread's nice value.
func Nice() (int, error) {
	// The system call answers 20 - nice, so as never to return a
	// negative number that could pass for an error.
	p, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return 0, fmt.Errorf("getpriority: %w", err)
	}
	return 20 - p, nil
}

// Restore gives every thread of process pid the nice value nice, as one
// takes a process started by Background into the foreground. A thread
// not yet changed may start another meanwhile, which inherits the old
// value, so the threads are listed again until a pass changes none.
func Restore(pid, nice int) error {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	for pass := 0; pass < 10; pass++ {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("restore priority of %d: %w", pid, err)
		}
		changed := false
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			p, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
			if errors.Is(err, unix.ESRCH) {
				continue // the thread ended
			}
			if err != nil {
				return fmt.Errorf("restore priority of %d: %w", pid, err)
			}
			if 20-p == nice {
				continue
			}
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("restore priority of %d: %w", pid, err)
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return fmt.Errorf("restore priority of %d: its threads kept changing", pid)
}
