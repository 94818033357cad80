package launcher

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fusebox/fusebox/internal/sched"
)

// TestSpareShim checks that a start leaves a spare shim behind, that the
// next start runs its container in that very process, and that a spare
// that is let go exits.
func TestSpareShim(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	run := func(check func(*Shim)) int {
		s, _, err := startContainer(t, ctx, container{opts: Options{Args: []string{"sh", "-c", "echo hi"}}})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		if check != nil {
			check(s)
		}
		if err := s.Begin(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := s.Wait(ctx)
		if err != nil || st.ExitCode != 0 {
			t.Fatalf("Wait: %+v, %v", st, err)
		}
		return s.Pid()
	}
	run(nil)
	spare := waitSpare(t)
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(spare.cmd.Process.Pid) + "/cmdline")
	if got := strings.ReplaceAll(string(cmdline), "\x00", " "); !strings.HasSuffix(got, " shim "+SpareStateDir+" ") {
		t.Errorf("spare shim's command line is %q", got)
	}
	// The spare waits at the lowest priority; the container it runs, and
	// the shim then, have the caller's.
	want, err := sched.Nice()
	if err != nil {
		t.Fatal(err)
	}
	if got := threadNices(t, spare.cmd.Process.Pid); len(got) != 1 || got[sched.Lowest] == 0 {
		t.Errorf("the spare's threads have nice values %v, want all %d", got, sched.Lowest)
	}
	run(func(s *Shim) {
		for what, pid := range map[string]int{"shim": spare.cmd.Process.Pid, "container": s.Pid()} {
			if got := threadNices(t, pid); len(got) != 1 || got[want] == 0 {
				t.Errorf("the %s's threads have nice values %v, want all %d", what, got, want)
			}
		}
	})
	select {
	case <-spare.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the spare shim did not run the second container to its end")
	}
	if st := spare.cmd.ProcessState; st == nil || !st.Success() {
		t.Errorf("the spare that ran the second container: %v", st)
	}
	// The second start left a spare in its turn; let it go.
	next := waitSpare(t)
	spares.Lock()
	delete(spares.byExe, fuseboxBin)
	spares.Unlock()
	next.discard()
	select {
	case <-next.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("a discarded spare shim did not exit")
	}
	if err := syscall.Kill(next.cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("discarded spare still there: %v", err)
	}
}

// waitSpare waits for the spare shim of the test binary's fusebox.
func waitSpare(t *testing.T) *spareShim {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		spares.Lock()
		sp := spares.byExe[fuseboxBin]
		spares.Unlock()
		if sp != nil {
			return sp
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no spare shim after a start")
	return nil
}

// threadNices counts the threads of pid by nice value (field 19 of
// /proc/PID/task/TID/stat).
func threadNices(t *testing.T, pid int) map[int]int {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := map[int]int{}
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/stat")
		if err != nil {
			continue // the thread ended
		}
		// The command name, in parentheses, may hold spaces.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		nice, err := strconv.Atoi(fields[16])
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		n[nice]++
	}
	return n
}
