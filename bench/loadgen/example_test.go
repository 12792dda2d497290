package loadgen_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/durableobjects/durable/bench/loadgen"
)

// Run a scenario against a server on this machine and print the table and
// the JSON form of the result.
func ExampleRun() {
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		BaseURL:  "http://127.0.0.1:8080",
		Conns:    16,
		Duration: 10 * time.Second,
		Warmup:   time.Second,
		Scenario: "session-get",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(res)
	fmt.Printf("%.0f ops/s, p99 %v\n", res.OpsPerSec(), res.Latency.P99)
	json.NewEncoder(os.Stdout).Encode(res)
}
