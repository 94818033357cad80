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
)

// TestSpareShim checks that a start leaves a spare shim behind, that the
// next start runs its container in that very process, and that a spare
// that is let go exits.
func TestSpareShim(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	run := func() int {
		s, _, err := startContainer(t, ctx, container{opts: Options{Args: []string{"sh", "-c", "echo hi"}}})
		if err != nil {
			t.Fatalf("Start: %v", err)
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
	run()
	spare := waitSpare(t)
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(spare.cmd.Process.Pid) + "/cmdline")
	if got := strings.ReplaceAll(string(cmdline), "\x00", " "); !strings.HasSuffix(got, " shim "+SpareStateDir+" ") {
		t.Errorf("spare shim's command line is %q", got)
	}
	run()
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
