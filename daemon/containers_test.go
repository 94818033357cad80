package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	moby "github.com/moby/moby/client"

	"github.com/fusebox/fusebox/cas"
)

func TestRandomNamesAndIDs(t *testing.T) {
	re := regexp.MustCompile(`^[a-z]+_[a-z]+[0-9]?$`)
	for i := range 200 {
		n := randomName(i % 3)
		if !re.MatchString(n) || !validName.MatchString(n) {
			t.Fatalf("random name %q", n)
		}
	}
	id := newID()
	if len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" || strings.Trim(id[:12], "0123456789") == "" {
		t.Fatalf("id %q", id)
	}
}

func TestReserveName(t *testing.T) {
	s := newContainerSet(nil)
	tests := []struct {
		name, want string
		err        error
		msg        string
	}{
		{"web", "web", nil, ""},
		{"/db", "db", nil, ""},
		{"web", "", ErrConflict, `Conflict. The container name "/web" is already in use by container "id-0"`},
		{"-bad", "", ErrBadParameter, "Invalid container name (-bad)"},
		{"a", "", ErrBadParameter, "Invalid container name (a)"},
		{"sp ace", "", ErrBadParameter, "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
	}
	for i, tt := range tests {
		got, err := s.reserveName(tt.name, "id-"+string(rune('0'+i)))
		if tt.err == nil {
			if err != nil || got != tt.want {
				t.Errorf("%q: %q, %v", tt.name, got, err)
			}
			continue
		}
		if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%q: %v, want %v with %q", tt.name, err, tt.err, tt.msg)
		}
	}
	s.releaseName("web", "someone-else")
	if _, err := s.reserveName("web", "x"); err == nil {
		t.Error("a release by another id freed the name")
	}
	s.releaseName("web", "id-0")
	if _, err := s.reserveName("web", "x"); err != nil {
		t.Errorf("released name: %v", err)
	}
}

func TestParseDetachKeysIsBadParameter(t *testing.T) {
	if _, err := parseDetachKeys("ctrl-xx"); !errors.Is(err, ErrBadParameter) {
		t.Errorf("bad keys: %v", err)
	}
	if k, err := parseDetachKeys(""); err != nil || len(k) != 2 {
		t.Errorf("default keys: %v %v", k, err)
	}
}

func TestParsers(t *testing.T) {
	if ts, err := parseEventTime("1700000000.5"); err != nil || ts.UnixNano() != 1700000000500000000 {
		t.Errorf("event time: %v %v", ts, err)
	}
	if _, err := parseEventTime("yesterday"); !errors.Is(err, ErrBadParameter) {
		t.Errorf("bad time: %v", err)
	}
	for s, want := range map[string]syscall.Signal{"KILL": syscall.SIGKILL, "sigterm": syscall.SIGTERM, "10": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2} {
		if got, err := parseSignalName(s); err != nil || got != want {
			t.Errorf("signal %q: %v %v", s, got, err)
		}
	}
	for _, s := range []string{"NOPE", "0", "99"} {
		if _, err := parseSignalName(s); err == nil {
			t.Errorf("signal %q accepted", s)
		}
	}
	if err := checkCpuset("0"); err != nil {
		t.Errorf("cpuset 0: %v", err)
	}
	for _, s := range []string{"999", "a", "1-0"} {
		if err := checkCpuset(s); !errors.Is(err, ErrBadParameter) {
			t.Errorf("cpuset %q: %v", s, err)
		}
	}
}

func TestMergeImageConfig(t *testing.T) {
	img := imageConfigFields{
		Entrypoint: []string{"/entry"}, Cmd: []string{"default"}, Env: []string{"PATH=/img", "A=1"},
		WorkingDir: "/app", User: "user", StopSignal: "SIGQUIT", Labels: map[string]string{"from": "image", "x": "img"},
	}
	tests := []struct {
		name  string
		cfg   container.Config
		check func(c container.Config) bool
	}{
		{"image defaults", container.Config{}, func(c container.Config) bool {
			return strings.Join(c.Entrypoint, " ") == "/entry" && strings.Join(c.Cmd, " ") == "default" &&
				c.WorkingDir == "/app" && c.User == "user" && c.StopSignal == "SIGQUIT"
		}},
		{"user cmd keeps entrypoint", container.Config{Cmd: []string{"mine"}}, func(c container.Config) bool {
			return strings.Join(c.Entrypoint, " ") == "/entry" && strings.Join(c.Cmd, " ") == "mine"
		}},
		{"user entrypoint drops image cmd", container.Config{Entrypoint: []string{"sh"}}, func(c container.Config) bool {
			return strings.Join(c.Entrypoint, " ") == "sh" && len(c.Cmd) == 0
		}},
		{"env and labels merge, user wins", container.Config{Env: []string{"A=2", "B=3"}, Labels: map[string]string{"x": "user"}}, func(c container.Config) bool {
			return strings.Join(c.Env, ",") == "PATH=/img,A=2,B=3" && c.Labels["x"] == "user" && c.Labels["from"] == "image"
		}},
	}
	for _, tt := range tests {
		cfg := tt.cfg
		if err := mergeImageConfig(&cfg, img); err != nil || !tt.check(cfg) {
			t.Errorf("%s: %+v, %v", tt.name, cfg, err)
		}
	}
	bad := container.Config{WorkingDir: "relative"}
	if err := mergeImageConfig(&bad, img); !errors.Is(err, ErrBadParameter) {
		t.Errorf("relative workdir: %v", err)
	}
}

// TestCreatedContainersAPI exercises the routes that need no running
// container, with the official client: create (and its errors), inspect,
// list with filters, rename, wait on a created container, events, rm,
// prune, and the records surviving a daemon restart.
func TestCreatedContainersAPI(t *testing.T) {
	d, host := startDaemon(t)
	c := newClient(t, host)
	ctx := context.Background()
	load(t, c, archiveBytes(t, testImage(t, "/bin/app", []string{"app:v1"}, tarOf(t, map[string]string{"bin/app": "x"}))))

	if _, err := c.ContainerCreate(ctx, moby.ContainerCreateOptions{Image: "nosuch:v9"}); !strings.Contains(errText(err), "No such image: nosuch:v9") {
		t.Errorf("unknown image: %v", err)
	}
	res, err := c.ContainerCreate(ctx, moby.ContainerCreateOptions{Name: "one", Config: &container.Config{Image: "app:v1", Labels: map[string]string{"tier": "web"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContainerCreate(ctx, moby.ContainerCreateOptions{Name: "one", Config: &container.Config{Image: "app:v1"}}); !strings.Contains(errText(err), `The container name "/one" is already in use`) {
		t.Errorf("name in use: %v", err)
	}
	for _, hc := range []*container.HostConfig{
		{Resources: container.Resources{Memory: 1024}},
		{RestartPolicy: container.RestartPolicy{Name: "sometimes"}},
		{AutoRemove: true, RestartPolicy: container.RestartPolicy{Name: "always"}},
	} {
		if _, err := c.ContainerCreate(ctx, moby.ContainerCreateOptions{Config: &container.Config{Image: "app:v1"}, HostConfig: hc}); err == nil {
			t.Errorf("bad host config %+v accepted", hc)
		}
	}
	two, err := c.ContainerCreate(ctx, moby.ContainerCreateOptions{Config: &container.Config{Image: "app:v1", Cmd: []string{"other"}}})
	if err != nil {
		t.Fatal(err)
	}
	ins, err := c.ContainerInspect(ctx, "one", moby.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ci := ins.Container
	if ci.ID != res.ID || ci.Name != "/one" || ci.Path != "/bin/app" || ci.State.Status != container.StateCreated ||
		ci.GraphDriver.Name != "fusebox" || ci.Config.Hostname != res.ID[:12] || ci.HostConfig.LogConfig.Type != "json-file" {
		t.Errorf("inspect: %+v", ci)
	}
	if _, err := c.ContainerInspect(ctx, res.ID[:6], moby.ContainerInspectOptions{}); err != nil {
		t.Errorf("inspect by prefix: %v", err)
	}

	list := func(all bool, f moby.Filters) []string {
		t.Helper()
		r, err := c.ContainerList(ctx, moby.ContainerListOptions{All: all, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range r.Items {
			names = append(names, s.Names[0])
		}
		return names
	}
	if got := list(false, nil); len(got) != 0 {
		t.Errorf("running list: %v", got)
	}
	if got := list(true, nil); len(got) != 2 {
		t.Errorf("all: %v", got)
	}
	if got := list(true, moby.Filters{}.Add("label", "tier=web")); len(got) != 1 || got[0] != "/one" {
		t.Errorf("label filter: %v", got)
	}
	if got := list(true, moby.Filters{}.Add("status", "created").Add("ancestor", "app:v1").Add("name", "^/one$")); len(got) != 1 {
		t.Errorf("status+ancestor+name filter: %v", got)
	}
	if _, err := c.ContainerList(ctx, moby.ContainerListOptions{Filters: moby.Filters{}.Add("status", "sleeping")}); err == nil {
		t.Error("bad status filter accepted")
	}

	// The image is in use now.
	if _, err := c.ImageRemove(ctx, "app:v1", moby.ImageRemoveOptions{}); err == nil {
		t.Error("rmi of an image in use succeeded")
	}

	// wait not-running returns at once for a created container.
	w := c.ContainerWait(ctx, "one", moby.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-w.Result:
		if r.StatusCode != 0 {
			t.Errorf("wait: %+v", r)
		}
	case err := <-w.Error:
		t.Errorf("wait: %v", err)
	case <-time.After(5 * time.Second):
		t.Error("wait not-running on a created container blocks")
	}
	if _, err := c.ContainerKill(ctx, "one", moby.ContainerKillOptions{}); !strings.Contains(errText(err), "is not running") {
		t.Errorf("kill of a created container: %v", err)
	}
	if _, err := c.ContainerRename(ctx, "one", moby.ContainerRenameOptions{NewName: "uno"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContainerInspect(ctx, "one", moby.ContainerInspectOptions{}); !strings.Contains(errText(err), "No such container: one") {
		t.Errorf("old name after rename: %v", err)
	}

	// The records survive a restart of the daemon on the same root.
	root := d.Root()
	if _, err := os.Stat(filepath.Join(root, ContainersDir, res.ID)); err != nil {
		t.Errorf("state dir: %v", err)
	}

	// removed wakes a waiter; rm deletes the record and the state dir.
	wr := c.ContainerWait(ctx, two.ID, moby.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
	time.Sleep(100 * time.Millisecond)
	if _, err := c.ContainerRemove(ctx, two.ID, moby.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wr.Result:
	case err := <-wr.Error:
		t.Errorf("wait removed: %v", err)
	case <-time.After(5 * time.Second):
		t.Error("wait removed did not return")
	}
	// The directory goes after the removal is reported.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := os.Stat(filepath.Join(root, ContainersDir, two.ID))
		if os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("state dir after rm: %v", err)
			break
		}
	}
	pr, err := c.ContainerPrune(ctx, moby.ContainerPruneOptions{})
	if err != nil || len(pr.Report.ContainersDeleted) != 1 || pr.Report.ContainersDeleted[0] != res.ID {
		t.Errorf("prune: %+v, %v", pr, err)
	}
	ev := c.Events(ctx, moby.EventsListOptions{Since: "0", Until: time.Now().Add(time.Second).Format(time.RFC3339Nano)})
	var actions []string
loop:
	for {
		select {
		case m := <-ev.Messages:
			actions = append(actions, string(m.Action))
		case <-ev.Err:
			break loop
		case <-time.After(10 * time.Second):
			t.Fatal("events did not end at until")
		}
	}
	if got := strings.Join(actions, " "); !strings.Contains(got, "create create rename destroy") {
		t.Errorf("events: %s", got)
	}
}

func TestContainerRecordsSurviveRestart(t *testing.T) {
	root := t.TempDir()
	host := "unix://" + filepath.Join(root, "s.sock")
	serve := func() (*moby.Client, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		d, err := New(ctx, Config{Root: root, Host: host, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- d.Serve(ctx) }()
		c := newClient(t, host)
		for i := 0; ; i++ {
			if _, err := c.Ping(ctx, moby.PingOptions{}); err == nil {
				break
			} else if i > 200 {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return c, func() { cancel(); <-done; d.Close() }
	}
	c, stop := serve()
	load(t, c, archiveBytes(t, testImage(t, "/bin/app", []string{"app:v1"}, tarOf(t, map[string]string{"bin/app": "x"}))))
	res, err := c.ContainerCreate(context.Background(), moby.ContainerCreateOptions{Name: "kept", Config: &container.Config{Image: "app:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	stop()
	// A directory no record owns is what a daemon that died between a
	// removal's report and its directory's removal leaves: the next
	// start removes it, and only it.
	orphan := filepath.Join(root, ContainersDir, strings.Repeat("ab", 32))
	if err := os.MkdirAll(filepath.Join(orphan, "merged"), 0o700); err != nil {
		t.Fatal(err)
	}
	c, stop = serve()
	defer stop()
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphan state dir after restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, ContainersDir, res.ID)); err != nil {
		t.Errorf("a kept container's state dir after restart: %v", err)
	}
	ins, err := c.ContainerInspect(context.Background(), "kept", moby.ContainerInspectOptions{})
	if err != nil || ins.Container.ID != res.ID || ins.Container.State.Status != container.StateCreated {
		t.Errorf("after restart: %+v, %v", ins.Container.State, err)
	}
	if _, err := c.ContainerCreate(context.Background(), moby.ContainerCreateOptions{Name: "kept", Config: &container.Config{Image: "app:v1"}}); err == nil {
		t.Error("the name was free after a restart")
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestLoadSharedName: after a crash two records may share a name (an --rm
// container's record is deleted after its name was given to the next
// container); the name is the newer container's, in either load order.
func TestLoadSharedName(t *testing.T) {
	ctx := context.Background()
	store, err := cas.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now().UTC()
	// Keys load in order: "a…" first, then "b…"; each case puts the newer
	// record under the other key.
	for _, newer := range []string{"a1", "b1"} {
		set := newContainerSet(store.Bucket("containers-" + newer))
		for _, id := range []string{"a1", "b1"} {
			created := now
			if id != newer {
				created = now.Add(-time.Minute)
			}
			b, err := json.Marshal(containerRecord{ID: id, Name: "/web", Created: created})
			if err != nil {
				t.Fatal(err)
			}
			if err := set.bucket.Put(ctx, id, b); err != nil {
				t.Fatal(err)
			}
		}
		if err := set.load(ctx, t.TempDir()); err != nil {
			t.Fatal(err)
		}
		if got := set.names["/web"]; got != newer {
			t.Errorf("the name went to %q, want the newer %q", got, newer)
		}
	}
}
