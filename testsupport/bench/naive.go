package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/awstest"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// The naive baseline: a rotator written the obvious way, kept only so the benchmark can show
// what the daemon's design saves. It speaks the same protocol against the same world (same
// configuration file, same secret format, same queues) but one message at a time, with a fresh
// DescribeSecret before every step, a GetSecretValue every time it needs the record, and
// applications checked one by one (at start-up and every hour). It keeps no state beyond the
// time of its own last rotate call per application. It is not hardened: no backoff beyond the
// queue's visibility timeout, no crash recovery, no metrics.
type naive struct {
	cfg     *config.Config
	format  vault.Format
	sm      *secretsmanager.Client
	sqs     *sqs.Client
	kms     *kms.Client
	lwa     *spapi.LWAClient
	app     *spapi.AppClient
	byID    map[string]config.Application
	ready   atomic.Bool
	mu      sync.Mutex
	rotated map[string]time.Time
	dlqs    []string
}

// RunNaive runs the naive baseline until a stop signal: `lwa-rotator-bench naive --config F --listen A`.
func RunNaive(ctx context.Context, cfgPath, listen string, signals <-chan os.Signal) error {
	cfg, err := config.Load(cfgPath, os.Getenv)
	if err != nil {
		return fmt.Errorf("loading the configuration: %w", err)
	}
	format, err := vault.ParseFormat(cfg.SecretFormat)
	if err != nil {
		return fmt.Errorf("reading secretFormat: %w", err)
	}
	awsCfg := awstest.Config(nil)
	if ep := os.Getenv("AWS_ENDPOINT_URL"); ep != "" {
		awsCfg.BaseEndpoint = aws.String(ep)
	}
	c := awstest.ClientsFrom(awsCfg)
	eps := map[spapi.Region]string{}
	for r, u := range cfg.Endpoints.SPAPI {
		eps[spapi.Region(r)] = u
	}
	n := &naive{cfg: cfg, format: format, sm: c.SecretsManager, sqs: c.SQS, kms: c.KMS,
		lwa: &spapi.LWAClient{Endpoint: cfg.Endpoints.LWA}, app: &spapi.AppClient{Endpoints: eps},
		byID: map[string]config.Application{}, rotated: map[string]time.Time{}}
	for _, a := range cfg.Applications {
		n.byID[a.ClientID] = a
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if n.ready.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := n.startup(ctx); err != nil {
		return err
	}
	n.ready.Store(true)
	queues := []string{cfg.Queues.Expiry}
	if cfg.Queues.NewSecret != cfg.Queues.Expiry {
		queues = append(queues, cfg.Queues.NewSecret)
	}
	var wg sync.WaitGroup
	for _, q := range queues {
		wg.Add(1)
		go func() { defer wg.Done(); n.poll(ctx, q) }()
	}
	wg.Add(2)
	go func() { defer wg.Done(); n.every(ctx, time.Duration(cfg.Queues.DeadLetterInterval), n.checkDLQs) }()
	go func() { defer wg.Done(); n.every(ctx, time.Hour, n.checkAll) }()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case s := <-signals:
			if s == syscall.SIGUSR1 {
				go n.rotateAll(ctx)
				continue
			}
			cancel()
		}
	}
}

// startup checks every application one by one: the key, the secret's metadata and value.
func (n *naive) startup(ctx context.Context) error {
	for _, a := range n.cfg.Applications {
		if _, err := n.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(n.cfg.KMSKeyID)}); err != nil {
			return fmt.Errorf("describing the KMS key for %s: %w", a.Name, err)
		}
		if _, _, err := n.read(ctx, a); err != nil {
			return err
		}
	}
	for _, q := range []string{n.cfg.Queues.Expiry, n.cfg.Queues.NewSecret} {
		out, err := n.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q),
			AttributeNames: []sqstypes.QueueAttributeName{"RedrivePolicy"}})
		if err != nil {
			return fmt.Errorf("reading queue %s: %w", q, err)
		}
		var rp struct {
			Target string `json:"deadLetterTargetArn"`
		}
		if json.Unmarshal([]byte(out.Attributes["RedrivePolicy"]), &rp) == nil && rp.Target != "" {
			name := rp.Target[strings.LastIndex(rp.Target, ":")+1:]
			n.dlqs = append(n.dlqs, q[:strings.LastIndex(q, "/")+1]+name)
		}
	}
	return nil
}

func (n *naive) every(ctx context.Context, d time.Duration, f func(context.Context)) {
	if d <= 0 {
		d = time.Minute
	}
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}

func (n *naive) checkDLQs(ctx context.Context) {
	for _, q := range n.dlqs {
		_, _ = n.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q),
			AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages"}})
	}
}

// checkAll reads every application one by one and rotates the ones inside renewBefore.
func (n *naive) checkAll(ctx context.Context) {
	for _, a := range n.cfg.Applications {
		rec, _, err := n.read(ctx, a)
		if err == nil && time.Until(rec.ExpiresAt) < time.Duration(n.cfg.RenewBefore) {
			err = n.rotate(ctx, a)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "naive: %v\n", err)
		}
	}
}

func (n *naive) rotateAll(ctx context.Context) {
	for _, a := range n.cfg.Applications {
		if err := n.rotate(ctx, a); err != nil {
			fmt.Fprintf(os.Stderr, "naive: %v\n", err)
		}
	}
}

// read is DescribeSecret then GetSecretValue of AWSCURRENT.
func (n *naive) read(ctx context.Context, a config.Application) (vault.Record, string, error) {
	if _, err := n.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(a.SecretID)}); err != nil {
		return vault.Record{}, "", fmt.Errorf("describing the secret of %s: %w", a.Name, err)
	}
	out, err := n.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(a.SecretID)})
	if err != nil {
		return vault.Record{}, "", fmt.Errorf("reading the secret of %s: %w", a.Name, err)
	}
	rec, err := vault.Decode([]byte(aws.ToString(out.SecretString)), n.format)
	if err != nil {
		return vault.Record{}, "", fmt.Errorf("decoding the secret of %s: %w", a.Name, err)
	}
	return rec, aws.ToString(out.VersionId), nil
}

func (n *naive) describe(ctx context.Context, a config.Application) (*secretsmanager.DescribeSecretOutput, error) {
	out, err := n.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(a.SecretID)})
	if err != nil {
		return nil, fmt.Errorf("describing the secret of %s: %w", a.Name, err)
	}
	return out, nil
}

// rotate asks Amazon for a new secret of a, unless this process did so within the rotate
// interval (so a duplicated expiry notice does not rotate twice).
func (n *naive) rotate(ctx context.Context, a config.Application) error {
	n.mu.Lock()
	last := n.rotated[a.ClientID]
	n.mu.Unlock()
	limit := time.Duration(n.cfg.Endpoints.RotateInterval)
	if limit <= 0 {
		limit = time.Minute
	}
	if time.Since(last) < limit {
		return nil
	}
	rec, _, err := n.read(ctx, a)
	if err != nil {
		return err
	}
	tok, err := n.lwa.Token(ctx, a.ClientID, rec.ClientSecret)
	if err != nil {
		return fmt.Errorf("minting a token for %s: %w", a.Name, err)
	}
	if _, err := n.describe(ctx, a); err != nil {
		return err
	}
	if _, err := n.app.RotateClientSecret(ctx, a.ClientID, spapi.Region(a.Region), tok.AccessToken); err != nil {
		return fmt.Errorf("rotating %s: %w", a.Name, err)
	}
	n.mu.Lock()
	n.rotated[a.ClientID] = time.Now()
	n.mu.Unlock()
	return nil
}

// poll receives one message at a time from q and handles it; a message that fails stays for
// the queue to redeliver after its visibility timeout.
func (n *naive) poll(ctx context.Context, q string) {
	for ctx.Err() == nil {
		out, err := n.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 1, WaitTimeSeconds: 20})
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		for _, m := range out.Messages {
			if err := n.handle(ctx, aws.ToString(m.Body)); err != nil {
				fmt.Fprintf(os.Stderr, "naive: %v\n", err)
				continue
			}
			_, _ = n.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

type naiveNotice struct {
	Type    string `json:"notificationType"`
	Payload struct {
		New struct {
			ClientID  string `json:"clientId"`
			Secret    string `json:"newClientSecret"`
			Expiry    string `json:"newClientSecretExpiryTime"`
			OldExpiry string `json:"oldClientSecretExpiryTime"`
		} `json:"applicationOAuthClientNewSecret"`
		Expiry struct {
			ClientID string `json:"clientId"`
			Expiry   string `json:"clientSecretExpiryTime"`
		} `json:"applicationOAuthClientSecretExpiry"`
	} `json:"payload"`
	Meta struct {
		NotificationID string `json:"notificationId"`
	} `json:"notificationMetadata"`
}

func (n *naive) handle(ctx context.Context, body string) error {
	var nt naiveNotice
	if err := json.Unmarshal([]byte(body), &nt); err != nil {
		return nil // unreadable: dropped, as a naive client would
	}
	switch nt.Type {
	case "APPLICATION_OAUTH_CLIENT_NEW_SECRET":
		return n.newSecret(ctx, nt)
	case "APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY":
		a, ok := n.byID[nt.Payload.Expiry.ClientID]
		if !ok {
			return nil
		}
		rec, _, err := n.read(ctx, a)
		if err != nil {
			return err
		}
		exp, err := time.Parse(time.RFC3339, nt.Payload.Expiry.Expiry)
		if err != nil {
			return nil
		}
		if rec.ExpiresAt.Before(exp) {
			exp = rec.ExpiresAt
		}
		if time.Until(exp) < time.Duration(n.cfg.RenewBefore) {
			return n.rotate(ctx, a)
		}
		return nil
	}
	return nil
}

// newSecret stages, verifies and promotes the secret a notification carries.
func (n *naive) newSecret(ctx context.Context, nt naiveNotice) error {
	p := nt.Payload.New
	a, ok := n.byID[p.ClientID]
	if !ok {
		return nil
	}
	fresh := secret.New(p.Secret)
	cur, curVersion, err := n.read(ctx, a)
	if err != nil {
		return err
	}
	exp, err1 := time.Parse(time.RFC3339, p.Expiry)
	old, err2 := time.Parse(time.RFC3339, p.OldExpiry)
	if err1 != nil || err2 != nil {
		return nil
	}
	if cur.ClientSecret.Equal(fresh) || !exp.After(cur.ExpiresAt) {
		return nil // already current, or older than the current one: a stale replay
	}
	if _, err := n.describe(ctx, a); err != nil {
		return err
	}
	b, err := vault.Encode(vault.Record{ClientID: a.ClientID, ClientSecret: fresh, ExpiresAt: exp, PreviousExpiresAt: old}, n.format)
	if err != nil {
		return err
	}
	token := vault.TokenFor(nt.Meta.NotificationID)
	if _, err := n.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(a.SecretID), ClientRequestToken: aws.String(token),
		SecretString: aws.String(string(b)), VersionStages: []string{"AWSPENDING"}}); err != nil {
		return fmt.Errorf("staging the new secret of %s: %w", a.Name, err)
	}
	if _, err := n.describe(ctx, a); err != nil {
		return err
	}
	if _, err := n.lwa.Token(ctx, a.ClientID, fresh); err != nil {
		return fmt.Errorf("verifying the new secret of %s: %w", a.Name, err)
	}
	desc, err := n.describe(ctx, a)
	if err != nil {
		return err
	}
	for v, stages := range desc.VersionIdsToStages {
		for _, st := range stages {
			if st == "AWSCURRENT" {
				curVersion = v
			}
		}
	}
	if curVersion == token {
		return nil // promoted by an earlier delivery of this message
	}
	if _, err := n.sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(a.SecretID),
		VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(token), RemoveFromVersionId: aws.String(curVersion)}); err != nil {
		return fmt.Errorf("promoting the new secret of %s: %w", a.Name, err)
	}
	if _, err := n.describe(ctx, a); err != nil {
		return err
	}
	if _, err := n.sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(a.SecretID),
		VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(token)}); err != nil {
		return fmt.Errorf("clearing AWSPENDING of %s: %w", a.Name, err)
	}
	return nil
}
