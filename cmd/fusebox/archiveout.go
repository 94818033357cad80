package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/term"
)

// checkArchiveOut refuses, as docker does, to write an archive to a
// terminal when no -o file is given.
func checkArchiveOut(out io.Writer, path string) error {
	if path != "" {
		return nil
	}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
	}
	return nil
}

// copyArchive copies an archive stream to out or, given a path, to a file
// written next to it and renamed into place, so that a failed transfer
// leaves no partial archive under the name asked for. failure starts every
// error message ("failed to save image").
func copyArchive(out io.Writer, path, failure string, r io.Reader) error {
	if path == "" {
		_, err := io.Copy(out, r)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fusebox-archive-*")
	if err != nil {
		return fmt.Errorf("%s: %w", failure, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", failure, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", failure, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
