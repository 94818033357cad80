package bench

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The diff and commit figures that need a running container or a disk
// measure: diff of a running container (the stopped one is fuseboxDiff),
// and the disk a commit of one big new file costs.

// fuseboxDiffRunning measures `fusebox diff` of a running container that
// made the ten changes, on an image of n files: the journal is live, the
// added paths are files, so nothing of the image is read.
func fuseboxDiffRunning(cli Fusebox, images *imageLoader, ds *Dataset, n int) Case {
	ctr := fmt.Sprintf("fusebox-bench-diffrun-%d-%d", n, os.Getpid())
	c := Case{Workload: fmt.Sprintf("diff, 10 changes, %s-file image, running container", count(n)), Backend: "fusebox",
		Unit: "ms", Better: LowerIsBetter, Note: "fusebox diff of a running container, from the live journal, warm"}
	c.Available = func(ctx context.Context) error { return cli.Has(ctx, "run", "diff", "rm", "load") }
	c.Setup = func(ctx context.Context) error {
		tree, err := ds.DiffTree(ctx, n)
		if err != nil {
			return err
		}
		ref, err := images.load(ctx, "diff"+strconv.Itoa(n), []string{tree, ds.Base})
		if err != nil {
			return err
		}
		script := shellChanges(tenChanges) + " && touch /changes-done && exec sleep 86400"
		if _, err := cli.Run(ctx, "run", "-d", "--name", ctr, ref, "sh", "-c", script); err != nil {
			return err
		}
		// The container makes its changes after start: wait for them.
		deadline := time.Now().Add(60 * time.Second)
		for {
			out, err := cli.Run(ctx, "diff", ctr)
			if err != nil {
				return err
			}
			if strings.Contains(out, "A /changes-done") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the container did not make its changes in 60s: diff shows\n%s", out)
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, err = c.Run(ctx, -1)
		return err
	}
	c.Run = timeDiff(cli, ctr)
	c.Teardown = func(ctx context.Context) error { return removeContainer(ctx, cli, ctr) }
	return c
}

// commitDiskName is the workload of fuseboxCommitDisk.
func commitDiskName(ds *Dataset) string {
	return fmt.Sprintf("commit of a %s new file: extra disk", sizeText(ds.Spec.BigSize))
}

// fuseboxCommitDisk measures the disk a commit of a stopped container with
// one new file of the big file's size costs: the bytes of the daemon's root
// file system (each inode once, as du counts: the container's upper file
// and a store object that is the same inode count once) after the commit
// minus before. A store that copies the file reports its size; one that
// adopts it, a few KiB of metadata.
func fuseboxCommitDisk(cli Fusebox, images *imageLoader, ds *Dataset) Case {
	ctr := fmt.Sprintf("fusebox-bench-commitdisk-%d", os.Getpid())
	var root string
	c := Case{Workload: commitDiskName(ds), Backend: "fusebox", Unit: "bytes", Better: LowerIsBetter,
		Note: "du (each inode once) of the daemon's root after `commit` of a stopped container minus before"}
	c.Available = func(ctx context.Context) error { return cli.Has(ctx, "run", "commit", "rm", "rmi", "load", "info") }
	c.Setup = func(ctx context.Context) error {
		out, err := cli.Run(ctx, "info", "--format", "{{.DockerRootDir}}")
		if err != nil {
			return err
		}
		if root = strings.TrimSpace(out); root == "" {
			return fmt.Errorf("fusebox info names no root dir")
		}
		ref, err := images.load(ctx, "busybox", []string{ds.Base})
		if err != nil {
			return err
		}
		_, err = cli.Run(ctx, "run", "--name", ctr, ref, "sh", "-c",
			fmt.Sprintf("head -c %d /dev/urandom > /big-new-file", ds.Spec.BigSize))
		return err
	}
	c.Run = func(ctx context.Context, i int) (float64, error) {
		tag := fmt.Sprintf("fusebox-bench/commitdisk:%d-%d", os.Getpid(), i+1)
		before, err := diskUsage(root)
		if err != nil {
			return 0, err
		}
		if _, err := cli.Run(ctx, "commit", ctr, tag); err != nil {
			return 0, err
		}
		after, err := diskUsage(root)
		if _, rerr := cli.Run(ctx, "rmi", tag); err == nil {
			err = rerr
		}
		if err != nil {
			return 0, err
		}
		return float64(after - before), nil
	}
	c.Teardown = func(ctx context.Context) error { return removeContainer(ctx, cli, ctr) }
	return c
}

// diskUsage is the disk the files under root take on root's file system,
// each inode once; other file systems mounted below (containers' rootfs)
// are not entered.
func diskUsage(root string) (int64, error) {
	var rst unix.Stat_t
	if err := unix.Stat(root, &rst); err != nil {
		return 0, err
	}
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed meanwhile
			}
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if st.Dev != rst.Dev {
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !seen[st.Ino] {
			seen[st.Ino] = true
			total += st.Blocks * 512
		}
		return nil
	})
	return total, err
}

// removeContainer removes a bench container, if it is there.
func removeContainer(ctx context.Context, cli Fusebox, name string) error {
	if cli.Has(ctx, "rm") != nil {
		return nil
	}
	_, err := cli.Run(ctx, "rm", "-f", name)
	if err != nil && strings.Contains(err.Error(), "No such container") {
		return nil
	}
	return err
}
