// Command hookpipe is a distribution of the Benthos stream processor with the
// hookpipe webhook plugins and outputs compiled in. It offers the engine's own
// command line: run, lint, test, list, blobl, echo and more.
package main

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/redpanda-data/benthos/v4/public/service"

	// The engine's open-source core components.
	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	// hookpipe's webhook plugins: free of any dependency on the outputs, so
	// they can be compiled into another distribution of the engine.
	_ "github.com/hookpipe/hookpipe/plugins/bloblang"
	_ "github.com/hookpipe/hookpipe/plugins/cloudevents"
	_ "github.com/hookpipe/hookpipe/plugins/controlshift"
	_ "github.com/hookpipe/hookpipe/plugins/generic"
	_ "github.com/hookpipe/hookpipe/plugins/metrics"
	_ "github.com/hookpipe/hookpipe/plugins/mirror"
	_ "github.com/hookpipe/hookpipe/plugins/thecity"
	_ "github.com/hookpipe/hookpipe/plugins/webhook"

	// hookpipe's outputs.
	_ "github.com/hookpipe/hookpipe/plugins/delivered"
	_ "github.com/hookpipe/hookpipe/plugins/outputs/kafka"
	_ "github.com/hookpipe/hookpipe/plugins/outputs/s3"
	_ "github.com/hookpipe/hookpipe/plugins/outputs/sql"
)

// Version and DateBuilt are set at build time with -ldflags "-X main.Version=...".
var (
	Version   = "dev"
	DateBuilt = "unknown"
)

// defaultGCPercent is the garbage collector's target when GOGC is not set.
// A webhook pipeline keeps little memory live (tens of MiB) but allocates
// per request, so at Go's default of 100 the collector runs dozens of times
// a second under load; at 400 it runs a quarter as often, for a few tens of
// MiB more heap. GOGC in the environment, as for any Go program, wins.
const defaultGCPercent = 400

// gcPercent is the collector target to set, or false to keep the runtime's
// own (from GOGC).
func gcPercent(getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	return defaultGCPercent, true
}

func main() {
	if p, ok := gcPercent(os.Getenv); ok {
		debug.SetGCPercent(p)
	}
	service.RunCLI(
		context.Background(),
		service.CLIOptSetProductName("hookpipe"),
		service.CLIOptSetBinaryName("hookpipe"),
		service.CLIOptSetVersion(Version, DateBuilt),
		service.CLIOptSetShowRunCommand(true),
		service.CLIOptAddCommand(sendCommand()),
	)
}
