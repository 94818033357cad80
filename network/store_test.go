package network_test

import (
	"testing"

	"github.com/fusebox/fusebox/network"
	"github.com/fusebox/fusebox/network/storetest"
)

func TestFileStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) network.Store {
		s, err := network.NewFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
