package fakesqs_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/spapi-tools/lwa-rotator/testsupport/moto"
)

// motoURL is the shared moto_server the agreeing rows also run against; motoErr says why there
// is none.
var (
	motoURL string
	motoErr error
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	srv, err := moto.Start(context.Background(), nil)
	if err != nil {
		motoErr = fmt.Errorf("starting moto: %w", err)
	} else {
		motoURL = srv.URL
		defer srv.Stop()
	}
	return m.Run()
}
