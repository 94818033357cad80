package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/archive"
	"github.com/fusebox/fusebox/client"
)

func init() { register("cp", newCpCmd) }

// cpOptions are cp's flags.
type cpOptions struct {
	archive, follow, quiet bool
}

// newCpCmd is `cp`: files between a container and the host, either way,
// or a tar stream on stdin or stdout ("-").
func newCpCmd() *cobra.Command {
	var o cpOptions
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  fusebox cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Long: "Copy files/folders between a container and the local filesystem\n\n" +
			"Use '-' as the source to read a tar archive from stdin\n" +
			"and extract it to a directory destination in a container.\n" +
			"Use '-' as the destination to stream a tar archive of a\n" +
			"container source to stdout.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcCtr, srcPath := splitCpArg(args[0])
			dstCtr, dstPath := splitCpArg(args[1])
			switch {
			case srcCtr != "" && dstCtr != "":
				return errors.New("copying between containers is not supported")
			case srcCtr == "" && dstCtr == "":
				return errors.New("must specify at least one container source")
			case srcPath == "" || dstPath == "":
				return errors.New("filepath cannot be empty")
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			if srcCtr != "" {
				return copyFromContainer(cmd, c, srcCtr, srcPath, dstPath, o)
			}
			return copyToContainer(cmd, c, srcPath, dstCtr, dstPath, o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.archive, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	fl.BoolVarP(&o.follow, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	fl.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress progress output during copy")
	return cmd
}

// splitCpArg splits "CONTAINER:PATH"; a path that starts with "/" or "."
// is local even with a colon in it, as docker reads it.
func splitCpArg(arg string) (ctr, p string) {
	if filepath.IsAbs(arg) || strings.HasPrefix(arg, ".") || arg == "-" {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok || ctr == "" {
		return "", arg
	}
	return ctr, p
}

// countingWriter counts what goes through it, for "Successfully copied".
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func copied(cmd *cobra.Command, o cpOptions, n int64, to string) {
	if !o.quiet {
		fmt.Fprintf(cmd.ErrOrStderr(), "Successfully copied %s to %s\n", units.HumanSizeWithPrecision(float64(n), 3), to)
	}
}

func copyFromContainer(cmd *cobra.Command, c *client.Client, ctrName, srcPath, dstPath string, o cpOptions) error {
	ctx := cmd.Context()
	if o.follow {
		st, err := c.ContainerStatPath(ctx, ctrName, client.ContainerStatPathOptions{Path: srcPath})
		if err != nil {
			return err
		}
		if st.Stat.Mode&fs.ModeSymlink != 0 && st.Stat.LinkTarget != "" {
			srcPath = st.Stat.LinkTarget
		}
	}
	res, err := c.CopyFromContainer(ctx, ctrName, client.CopyFromContainerOptions{SourcePath: srcPath})
	if err != nil {
		return err
	}
	defer res.Content.Close()
	if dstPath == "-" {
		cw := &countingWriter{w: cmd.OutOrStdout()}
		_, err := io.Copy(cw, res.Content)
		return err
	}
	src := res.Stat
	srcIsDir := src.Mode.IsDir()
	contents := srcIsDir && strings.HasSuffix(srcPath, "/.")
	dst, err := filepath.Abs(dstPath)
	if err != nil {
		return err
	}
	into, rename := "", ""
	fi, err := os.Stat(dst)
	switch {
	case err == nil && fi.IsDir() && contents:
		into = dst
	case err == nil && fi.IsDir():
		into = dst
	case err == nil && srcIsDir:
		return fmt.Errorf("cannot copy a directory to a file: %s", dstPath)
	case err == nil || errors.Is(err, fs.ErrNotExist):
		if errors.Is(err, fs.ErrNotExist) && strings.HasSuffix(dstPath, string(filepath.Separator)) && !srcIsDir {
			return fmt.Errorf("destination directory %s does not exist", dstPath)
		}
		if contents {
			if err := os.Mkdir(dst, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			into = dst
		} else {
			into, rename = filepath.Dir(dst), filepath.Base(dst)
		}
	default:
		return err
	}
	if pfi, err := os.Stat(into); err != nil {
		return fmt.Errorf("destination directory: %w", err)
	} else if !pfi.IsDir() {
		return fmt.Errorf("destination %s is not a directory", into)
	}
	opts := archive.ExtractOptions{KeepOwner: os.Geteuid() == 0}
	if rename != "" {
		from := src.Name
		opts.Rename = func(name string) string { return rebase(name, from, rename) }
	}
	cr := &countingReader{r: res.Content}
	// Rooted at the destination: no entry of the stream lands outside it.
	if err := archive.ExtractTar(ctx, cr, into, into, opts); err != nil {
		return err
	}
	copied(cmd, o, cr.n, dstPath)
	return nil
}

// rebase renames the root of a tar entry name: from/x becomes to/x.
func rebase(name, from, to string) string {
	name = strings.TrimPrefix(name, "./")
	if name == from || strings.TrimSuffix(name, "/") == from {
		return to
	}
	if rest, ok := strings.CutPrefix(name, from+"/"); ok {
		return to + "/" + rest
	}
	return name
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func copyToContainer(cmd *cobra.Command, c *client.Client, srcPath, ctrName, dstPath string, o cpOptions) error {
	ctx := cmd.Context()
	to := ctrName + ":" + dstPath
	if srcPath == "-" {
		cr := &countingReader{r: cmd.InOrStdin()}
		_, err := c.CopyToContainer(ctx, ctrName, client.CopyToContainerOptions{DestinationPath: dstPath, Content: cr, CopyUIDGID: o.archive})
		if err != nil {
			return err
		}
		copied(cmd, o, cr.n, to)
		return nil
	}
	src, err := filepath.Abs(srcPath)
	if err != nil {
		return err
	}
	if o.follow {
		if src, err = filepath.EvalSymlinks(src); err != nil {
			return err
		}
	}
	sfi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	contents := sfi.IsDir() && strings.HasSuffix(srcPath, "/.")
	// Where the tar goes, and what its root is called there.
	dir, name := dstPath, filepath.Base(src)
	if contents {
		name = "."
	}
	st, err := c.ContainerStatPath(ctx, ctrName, client.ContainerStatPathOptions{Path: dstPath})
	if err == nil && st.Stat.Mode&fs.ModeSymlink != 0 && st.Stat.LinkTarget != "" {
		dstPath = st.Stat.LinkTarget
		st, err = c.ContainerStatPath(ctx, ctrName, client.ContainerStatPathOptions{Path: dstPath})
		dir = dstPath
	}
	switch {
	case err == nil && st.Stat.Mode.IsDir():
	case err == nil && sfi.IsDir():
		return fmt.Errorf("cannot copy a directory to a file: %s", to)
	case err == nil || isNotFound(err):
		if isNotFound(err) && strings.HasSuffix(dstPath, "/") {
			return fmt.Errorf("destination directory %s does not exist", to)
		}
		dir, name = path.Dir(path.Clean("/"+dstPath)), path.Base(path.Clean("/"+dstPath))
	default:
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.WriteTree(ctx, pw, src, name)) }()
	cr := &countingReader{r: pr}
	_, err = c.CopyToContainer(ctx, ctrName, client.CopyToContainerOptions{DestinationPath: dir, Content: cr, CopyUIDGID: o.archive})
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return err
	}
	copied(cmd, o, cr.n, to)
	return nil
}

// isNotFound reports a 404 from the daemon.
func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }
