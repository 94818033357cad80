// Package storetest is the conformance suite for network.Store
// implementations: the daemon runs it against its Badger bucket, and the
// network package against FileStore, so both keep the same contract.
package storetest

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/fusebox/fusebox/network"
)

// Run checks the Store contract; newStore must return an empty store each
// time it is called.
func Run(t *testing.T, newStore func(t *testing.T) network.Store) {
	ctx := context.Background()
	rec := func(id, name string) network.Network {
		return network.Network{
			ID: id, Name: name, Driver: "bridge", Bridge: "fb-" + id[:12],
			Subnet: netip.MustParsePrefix("10.213.7.0/24"), Gateway: netip.MustParseAddr("10.213.7.1"),
			Labels: map[string]string{"k": "v"}, Options: map[string]string{"o": "p"},
			Created: time.Date(2026, 11, 29, 11, 0, 0, 0, time.UTC), UserSubnet: true, Internal: true,
		}
	}
	idA := "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	idB := "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

	t.Run("empty", func(t *testing.T) {
		s := newStore(t)
		nets, err := s.Networks(ctx)
		if err != nil || len(nets) != 0 {
			t.Fatalf("Networks of an empty store = %v, %v", nets, err)
		}
	})
	t.Run("put and list round-trip every field", func(t *testing.T) {
		s := newStore(t)
		a, b := rec(idA, "alpha"), rec(idB, "beta")
		for _, n := range []network.Network{b, a} {
			if err := s.PutNetwork(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		nets, err := s.Networks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]network.Network{}
		for _, n := range nets {
			byID[n.ID] = n
		}
		if len(nets) != 2 || !reflect.DeepEqual(byID[idA], a) || !reflect.DeepEqual(byID[idB], b) {
			t.Fatalf("Networks = %+v, want %+v and %+v", nets, a, b)
		}
	})
	t.Run("put replaces", func(t *testing.T) {
		s := newStore(t)
		a := rec(idA, "alpha")
		if err := s.PutNetwork(ctx, a); err != nil {
			t.Fatal(err)
		}
		a.Labels = map[string]string{"changed": "yes"}
		if err := s.PutNetwork(ctx, a); err != nil {
			t.Fatal(err)
		}
		nets, err := s.Networks(ctx)
		if err != nil || len(nets) != 1 || nets[0].Labels["changed"] != "yes" {
			t.Fatalf("after replace: %+v, %v", nets, err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		s := newStore(t)
		if err := s.PutNetwork(ctx, rec(idA, "alpha")); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteNetwork(ctx, idA); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteNetwork(ctx, idA); err != nil {
			t.Fatalf("deleting a missing record: %v", err)
		}
		nets, err := s.Networks(ctx)
		if err != nil || len(nets) != 0 {
			t.Fatalf("after delete: %+v, %v", nets, err)
		}
	})
}
