package loadgen

import (
	"context"
	"slices"
)

// A Scenario is a named workload. Run calls Prepare once, before anything is
// measured, and then drives each worker's [Op] in a loop.
type Scenario struct {
	// Name selects the scenario in [Config].
	Name string
	// Description says what one op does, for --help and reports.
	Description string
	// RequestsPerOp is the number of HTTP requests one successful op sends.
	RequestsPerOp int
	// Prepare sets the target up (its requests are not reported) and
	// returns the function that makes worker w's op.
	Prepare func(ctx context.Context, env Env) (func(w int) Op, error)
}

// Env is what a scenario's Prepare gets.
type Env struct {
	// Client reaches the target; it tallies nothing. Safe for concurrent use.
	Client *Client
	// Conns is the number of workers that will run ops.
	Conns int
	// Seed is the run's seed for random choices.
	Seed uint64
	// Cleanup registers f to run when the run ends, after the measured
	// phase or a failed Prepare (last registered, first run): for what a
	// scenario holds open, such as WebSockets.
	Cleanup func(f func())
}

// An Op performs one operation through c, which belongs to the calling
// worker. It returns an error if any request of the op failed.
type Op func(ctx context.Context, c *Client) error

// scenarios is the registry, in the order reports list them.
var scenarios = []Scenario{
	ratelimitOne,
	ratelimit10k,
	lockCycle,
	sessionCreate,
	sessionGet,
	docsFanout,
}

// Scenarios returns every known scenario.
func Scenarios() []Scenario { return slices.Clone(scenarios) }

// ScenarioNames returns the names of every known scenario.
func ScenarioNames() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.Name
	}
	return names
}

// Lookup returns the scenario called name.
func Lookup(name string) (Scenario, bool) {
	for _, s := range scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}
