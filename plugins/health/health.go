// Package health lets the components of one stream tell each other whether
// the servers they depend on can be reached. hookpipe's outputs register a
// probe for their sink; the webhook_server input runs the probes of its stream
// and answers its readiness check from them, so a load balancer stops sending
// while a sink is down instead of finding out from failed requests.
//
// The package depends on nothing but the engine's plugin API: an input that
// reads the probes does not depend on the outputs that add them, and a stream
// whose outputs add none simply has no sink probes.
package health

import (
	"context"
	"sort"
	"sync"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Check reports whether a dependency can be reached now. It returns nil when
// it can, and must return within ctx's deadline.
type Check func(ctx context.Context) error

// Probe is one registered check.
type Probe struct {
	// Name says which component the probe belongs to (its type and config
	// path), for logs and readiness replies. It never holds a secret.
	Name  string
	Check Check
}

// Registry holds the probes of one stream.
type Registry struct {
	mu     sync.Mutex
	next   int
	probes map[int]Probe
}

// registryKey scopes a registry to one stream: the engine's generic store
// may be shared by every stream of a process (streams mode).
type registryKey struct{ stream string }

// For returns the registry of the stream that mgr belongs to, creating it on
// first use. An output and an input of the same stream get the same
// registry; two streams of one process never see each other's probes.
func For(mgr *service.Resources) *Registry {
	r, _ := mgr.GetOrSetGeneric(registryKey{stream: mgr.StreamID()}, &Registry{probes: map[int]Probe{}})
	return r.(*Registry)
}

// Add registers a probe and returns the function that removes it, for the
// component's Close.
func (r *Registry) Add(name string, check Check) (remove func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.next
	r.next++
	r.probes[id] = Probe{Name: name, Check: check}
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			delete(r.probes, id)
		})
	}
}

// Probes returns the registered probes, in the order they were added.
func (r *Registry) Probes() []Probe {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]int, 0, len(r.probes))
	for id := range r.probes {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	out := make([]Probe, len(ids))
	for i, id := range ids {
		out[i] = r.probes[id]
	}
	return out
}

// ComponentName names a component for a probe: its type and the dotted path
// of its config, e.g. "sql_insert at root.output.switch.cases.1.output".
func ComponentName(typ string, mgr *service.Resources) string {
	path := mgr.Path()
	if len(path) == 0 {
		return typ
	}
	name := typ + " at "
	for i, p := range path {
		if i > 0 {
			name += "."
		}
		name += p
	}
	return name
}
