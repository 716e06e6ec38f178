package spapisim_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/awstest"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/moto"
	"github.com/spapi-tools/lwa-rotator/testsupport/spapisim"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

var motoServer *moto.Server

func TestMain(m *testing.M) {
	srv, err := moto.Start(context.Background(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting moto:", err)
		os.Exit(1)
	}
	motoServer = srv
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// TestDeliversIntoSQS is the one test against real SQS behaviour: a rotation's notification
// lands on a moto queue and reads back intact.
func TestDeliversIntoSQS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sqsc := awstest.NewClients(motoServer.URL, nil).SQS
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("spapisim-new-secret")})
	if err != nil {
		t.Fatal(err)
	}
	clk := fakeclock.New(t0)
	sim := spapisim.New(spapisim.Options{Clock: clk, Deliver: spapisim.SQSDeliverer{SQS: sqsc}})
	defer sim.Close()
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	app := defaultApp()
	app.ExpiryQueueURL, app.NewSecretQueueURL = "", *q.QueueUrl
	if err := sim.Register(app); err != nil {
		t.Fatal(err)
	}

	lwa := &spapi.LWAClient{Endpoint: srv.URL + "/auth/o2/token", Clock: clk}
	tok, err := lwa.Token(ctx, clientID, secret.New(firstSecret))
	if err != nil {
		t.Fatal(err)
	}
	appc := &spapi.AppClient{Endpoints: map[spapi.Region]string{spapi.RegionEU: srv.URL}, Clock: clk}
	if _, err := appc.RotateClientSecret(ctx, clientID, spapi.RegionEU, tok.AccessToken); err != nil {
		t.Fatal(err)
	}

	out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("%d messages on the queue, want 1", len(out.Messages))
	}
	n := parse(t, *out.Messages[0].Body)
	checkEnvelope(t, n, "APPLICATION_OAUTH_CLIENT_NEW_SECRET")
	newSec, _, _ := sim.Newest(clientID)
	got := n.fields(t, "applicationOAuthClientNewSecret")["newClientSecret"]
	if !secret.New(got).Equal(newSec) || !sim.Valid(clientID, secret.New(got)) {
		t.Error("the secret read from SQS is not the simulator's newest valid secret")
	}
}
