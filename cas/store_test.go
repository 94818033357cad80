package cas_test

import (
	"context"
	"testing"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/cas/storetest"
)

func newStore(opts ...cas.Option) func(t *testing.T) *cas.Store {
	return func(t *testing.T) *cas.Store {
		s, err := cas.Open(context.Background(), t.TempDir(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func TestStore(t *testing.T) { storetest.Run(t, newStore()) }

// Nothing inline: every non-empty file goes through an object file.
func TestStoreNoInline(t *testing.T) { storetest.Run(t, newStore(cas.WithInlineThreshold(0))) }

// Reference counts spread over many small transactions, as for layers of
// more files than one Badger transaction holds.
func TestStoreSmallRefBatches(t *testing.T) { storetest.Run(t, newStore(cas.WithRefBatch(2))) }
