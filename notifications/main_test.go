package notifications

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/spapi-tools/lwa-rotator/testsupport/moto"
)

// motoURL is the shared moto_server; motoErr says why there is none.
var (
	motoURL string
	motoErr error
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	flag.Parse()
	// Fuzz workers re-run TestMain in every process; they only need Parse, not a moto each.
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return m.Run()
	}
	srv, err := moto.Start(context.Background(), nil)
	if err != nil {
		motoErr = fmt.Errorf("starting moto: %w", err)
	} else {
		motoURL = srv.URL
		defer srv.Stop()
	}
	return m.Run()
}
