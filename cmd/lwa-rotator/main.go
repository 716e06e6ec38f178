// Command lwa-rotator keeps Amazon SP-API LWA client secrets fresh. main only hands over to run.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lwa-rotator:", err)
		os.Exit(exitCode(err))
	}
}
