package daemon

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/fusebox/fusebox/cas"
)

func init() {
	RegisterErrorStatus(cas.ErrNotFound, http.StatusNotFound)
	RegisterErrorStatus(cas.ErrInUse, http.StatusConflict)
	RegisterErrorStatus(cas.ErrExists, http.StatusConflict)
	RegisterErrorStatus(cas.ErrAmbiguous, http.StatusBadRequest)
	RegisterErrorStatus(cas.ErrDigestMismatch, http.StatusBadRequest)
	RegisterErrorStatus(cas.ErrInvalidLayer, http.StatusBadRequest)
	RegisterErrorStatus(cas.ErrTooLarge, http.StatusBadRequest)
}

// StoreDir is the store's directory inside the daemon's root.
const StoreDir = "cas"

// openState opens what the daemon owns under its root: the store (whose
// Open also cleans up what a crash left) and the spool directory for
// uploads, emptied at start.
func (d *Daemon) openState(ctx context.Context) error {
	st, err := cas.Open(ctx, filepath.Join(d.root, StoreDir))
	if err != nil {
		return err
	}
	d.store = st
	d.OnClose(st.Close)
	tmp := d.tmpDir()
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("clean spool: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return fmt.Errorf("create spool: %w", err)
	}
	return d.openMounts(ctx)
}

// Store is the daemon's content-addressed store.
func (d *Daemon) Store() *cas.Store { return d.store }

// tmpDir holds uploads being spooled (load) and other scratch files.
func (d *Daemon) tmpDir() string { return filepath.Join(d.root, "tmp") }
