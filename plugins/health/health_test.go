package health

import (
	"context"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func TestRegistry(t *testing.T) {
	mgr := service.MockResources()
	r := For(mgr)
	if For(mgr) != r {
		t.Fatal("two registries for one stream")
	}
	if For(service.MockResources()) == r {
		t.Fatal("two streams share a registry")
	}
	ok := func(context.Context) error { return nil }
	removeA := r.Add("a", ok)
	r.Add("b", ok)
	removeC := r.Add("c", ok)
	removeA()
	removeA() // twice is harmless
	removeC()
	r.Add("d", ok)
	var names []string
	for _, p := range r.Probes() {
		names = append(names, p.Name)
	}
	if len(names) != 2 || names[0] != "b" || names[1] != "d" {
		t.Fatalf("probes %v, want [b d] in the order they were added", names)
	}
}

func TestComponentName(t *testing.T) {
	if n := ComponentName("sql_insert", service.MockResources()); n != "sql_insert" {
		t.Errorf("no path: %q", n)
	}
}
