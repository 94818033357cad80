package layerfs_test

import (
	"testing"

	"github.com/fusebox/fusebox/layerfs"
	"github.com/fusebox/fusebox/layerfs/layertest"
)

func dirSource(t *testing.T, l layertest.Layer) layerfs.Source {
	d := t.TempDir()
	layertest.WriteDir(t, d, l)
	s, err := layerfs.NewDirSource(d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDirSourceConformance(t *testing.T) {
	layertest.Run(t, dirSource)
}

func TestMemSourceConformance(t *testing.T) {
	layertest.Run(t, func(t *testing.T, l layertest.Layer) layerfs.Source { return layertest.NewMemSource(l) })
}
