package doctor

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// QueueReader holds the SQS calls doctor makes; *sqs.Client satisfies it.
type QueueReader interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
}

// KeyReader holds the KMS calls doctor makes; *kms.Client satisfies it.
type KeyReader interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	GetKeyPolicy(ctx context.Context, in *kms.GetKeyPolicyInput, optFns ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error)
}

// SecretReader holds the Secrets Manager calls doctor makes; *secretsmanager.Client satisfies it.
type SecretReader interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Reader is the daemon's read of one secret (one DescribeSecret, GetSecretValue of AWSCURRENT and
// of AWSPENDING if any); *vault.Store satisfies it.
type Reader interface {
	Read(ctx context.Context, secretID string) (vault.Snapshot, error)
}

// SecretLister is the listing call doctor tries when the Secrets Manager client has it
// (*secretsmanager.Client does): whether the daemon's optional listing grant is in place.
type SecretLister interface {
	ListSecrets(ctx context.Context, in *secretsmanager.ListSecretsInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error)
}

// TokenMinter runs LWA's grantless grant; *spapi.LWAClient satisfies it.
type TokenMinter interface {
	Token(ctx context.Context, clientID string, clientSecret secret.Value) (spapi.Token, error)
}

// callTimeout bounds each call, so one unreachable service cannot hang the whole checklist.
const callTimeout = 20 * time.Second

// Facts is everything doctor learned, with the error of each read that failed. It never holds a
// secret value.
type Facts struct {
	// Key is the configuration's kmsKeyId.
	Key       *KeyFacts
	Queues    []QueueFacts
	Apps      []AppFacts
	Endpoints []EndpointFacts
	Listing   ListingFacts
	// Settings are the daemon's, which the rotation checks judge with.
	Settings rotator.Settings
}

// ListingFacts is what one ListSecrets call said: whether the identity may list secrets.
type ListingFacts struct {
	Tried bool
	Err   error
}

// KeyFacts is what DescribeKey and GetKeyPolicy said about one key.
type KeyFacts struct {
	// ID is the key as it was named (id, ARN or alias).
	ID          string
	DescribeErr error
	ARN         string
	Manager     string // CUSTOMER or AWS
	State       string // Enabled, Disabled, PendingDeletion, …
	// Policy is the key's "default" policy text; read only for customer-managed keys.
	Policy    string
	PolicyErr error
}

// QueueFacts is one configured notification queue.
type QueueFacts struct {
	URL string
	// Uses are the notification types registered to it: "expiry", "newSecret".
	Uses  []string
	Err   error
	Attrs map[string]string
	// Key is the queue's SSE-KMS key, nil when KmsMasterKeyId is empty.
	Key *KeyFacts
	// DLQ is the dead-letter queue named by the redrive policy, nil without one.
	DLQ *DLQFacts
	// RedriveErr: the RedrivePolicy attribute is present but unreadable.
	RedriveErr error
	// MaxReceiveCount from the redrive policy (0 when absent).
	MaxReceiveCount int
}

// DLQFacts is a dead-letter queue found through a redrive policy.
type DLQFacts struct {
	ARN   string
	URL   string
	Err   error
	Attrs map[string]string
}

// AppFacts is one configured application and its secret.
type AppFacts struct {
	Name, SecretID, ClientID string
	DescribeErr              error
	ARN                      string
	// KMSKeyID is the secret's key as DescribeSecret names it ("" = the AWS managed key).
	KMSKeyID string
	Deleted  bool
	Stages   map[string][]string
	TagKeys  []string
	// Key is the secret's key resolved with DescribeKey.
	Key *KeyFacts
	// ValueErr: reading or parsing AWSCURRENT failed.
	ValueErr       error
	CurrentVersion string
	RecordClientID string
	// TokenTried: a token was asked for with AWSCURRENT; TokenErr is LWA's answer.
	TokenTried bool
	TokenErr   error
	// Rotation is the daemon's own read of the secret; nil when doctor was given no reader.
	Rotation *RotationFacts
}

// RotationFacts is what the daemon's read (vault.Store.Read) found, with the secret values
// dropped: the rotation checks judge it with the daemon's decision as of At.
type RotationFacts struct {
	App      rotator.App
	Snapshot vault.Snapshot
	Err      error
	At       time.Time
}

// EndpointFacts is one SP-API regional endpoint.
type EndpointFacts struct {
	Region, URL string
	Apps        []string
	Err         error
	Status      int
	// TLSVersion is "" for a plain-http endpoint (loopback with allowInsecureLoopback).
	TLSVersion string
	Plain      bool
}

// Gather makes every read the checks need, once each.
func Gather(ctx context.Context, cfg *config.Config, d Deps) Facts {
	g := &gatherer{d: d, keys: map[string]*KeyFacts{}}
	f := Facts{Settings: d.Settings}
	f.Key = g.key(ctx, cfg.KMSKeyID, false)
	for _, u := range queueUses(cfg) {
		f.Queues = append(f.Queues, g.queue(ctx, u.url, u.uses))
	}
	for _, a := range cfg.Applications {
		f.Apps = append(f.Apps, g.app(ctx, cfg, a))
	}
	f.Endpoints = g.endpoints(ctx, cfg)
	f.Listing = g.listing(ctx)
	return f
}

// listing asks for one secret's metadata, to learn whether ListSecrets is allowed.
func (g *gatherer) listing(ctx context.Context) ListingFacts {
	l, ok := g.d.SecretsManager.(SecretLister)
	if !ok {
		return ListingFacts{}
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	_, err := l.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(1)})
	return ListingFacts{Tried: true, Err: err}
}

type queueUse struct {
	url  string
	uses []string
}

func queueUses(cfg *config.Config) []queueUse {
	if cfg.Queues.Expiry == cfg.Queues.NewSecret {
		return []queueUse{{cfg.Queues.Expiry, []string{"expiry", "newSecret"}}}
	}
	return []queueUse{{cfg.Queues.Expiry, []string{"expiry"}}, {cfg.Queues.NewSecret, []string{"newSecret"}}}
}

type gatherer struct {
	d    Deps
	keys map[string]*KeyFacts
}

func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, callTimeout)
}

// key describes a key once per name; withPolicy also reads its key policy (customer keys only).
func (g *gatherer) key(ctx context.Context, id string, withPolicy bool) *KeyFacts {
	k, ok := g.keys[id]
	if !ok {
		k = &KeyFacts{ID: id}
		g.keys[id] = k
		c, cancel := bounded(ctx)
		out, err := g.d.KMS.DescribeKey(c, &kms.DescribeKeyInput{KeyId: aws.String(id)})
		cancel()
		switch {
		case err != nil:
			k.DescribeErr = fmt.Errorf("describing KMS key %s: %w", id, err)
		case out.KeyMetadata == nil:
			k.DescribeErr = fmt.Errorf("describing KMS key %s: KMS returned no key metadata", id)
		default:
			k.ARN = aws.ToString(out.KeyMetadata.Arn)
			k.Manager = string(out.KeyMetadata.KeyManager)
			k.State = string(out.KeyMetadata.KeyState)
		}
	}
	if withPolicy && k.DescribeErr == nil && k.Manager == "CUSTOMER" && k.Policy == "" && k.PolicyErr == nil {
		// GetKeyPolicy takes a key id or ARN, never an alias.
		c, cancel := bounded(ctx)
		out, err := g.d.KMS.GetKeyPolicy(c, &kms.GetKeyPolicyInput{KeyId: aws.String(k.ARN), PolicyName: aws.String("default")})
		cancel()
		if err != nil {
			k.PolicyErr = fmt.Errorf("reading the key policy of %s: %w", k.ARN, err)
		} else {
			k.Policy = aws.ToString(out.Policy)
		}
	}
	return k
}

func (g *gatherer) attributes(ctx context.Context, url string) (map[string]string, error) {
	c, cancel := bounded(ctx)
	defer cancel()
	out, err := g.d.SQS.GetQueueAttributes(c, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil {
		return nil, fmt.Errorf("reading the attributes of queue %s: %w", url, err)
	}
	return out.Attributes, nil
}

func (g *gatherer) queue(ctx context.Context, url string, uses []string) QueueFacts {
	q := QueueFacts{URL: url, Uses: uses}
	q.Attrs, q.Err = g.attributes(ctx, url)
	if q.Err != nil {
		return q
	}
	if id := q.Attrs["KmsMasterKeyId"]; id != "" {
		q.Key = g.key(ctx, id, true)
	}
	raw, ok := q.Attrs["RedrivePolicy"]
	if !ok || raw == "" {
		return q
	}
	target, count, err := parseRedrive(raw)
	if err != nil {
		q.RedriveErr = err
		return q
	}
	q.MaxReceiveCount = count
	q.DLQ = g.dlq(ctx, target)
	return q
}

// parseRedrive reads RedrivePolicy; AWS writes maxReceiveCount as a number, some tools as a string.
func parseRedrive(raw string) (string, int, error) {
	var rp struct {
		DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
		MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(raw), &rp); err != nil {
		return "", 0, errors.New("RedrivePolicy is not valid JSON")
	}
	if rp.DeadLetterTargetArn == "" {
		return "", 0, errors.New("RedrivePolicy has no deadLetterTargetArn")
	}
	var n int
	s := strings.Trim(string(rp.MaxReceiveCount), `"`)
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n <= 0 {
		return "", 0, errors.New("RedrivePolicy.maxReceiveCount is not a positive integer")
	}
	return rp.DeadLetterTargetArn, n, nil
}

func (g *gatherer) dlq(ctx context.Context, arn string) *DLQFacts {
	d := &DLQFacts{ARN: arn}
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[2] != "sqs" {
		d.Err = errors.New("deadLetterTargetArn is not an SQS queue ARN")
		return d
	}
	c, cancel := bounded(ctx)
	out, err := g.d.SQS.GetQueueUrl(c, &sqs.GetQueueUrlInput{QueueName: aws.String(parts[5]), QueueOwnerAWSAccountId: aws.String(parts[4])})
	cancel()
	if err != nil {
		d.Err = fmt.Errorf("finding dead-letter queue %s: %w", arn, err)
		return d
	}
	d.URL = aws.ToString(out.QueueUrl)
	d.Attrs, d.Err = g.attributes(ctx, d.URL)
	return d
}

func (g *gatherer) app(ctx context.Context, cfg *config.Config, a config.Application) AppFacts {
	f := AppFacts{Name: a.Name, SecretID: a.SecretID, ClientID: a.ClientID}
	c, cancel := bounded(ctx)
	d, err := g.d.SecretsManager.DescribeSecret(c, &secretsmanager.DescribeSecretInput{SecretId: aws.String(a.SecretID)})
	cancel()
	if err != nil {
		f.DescribeErr = fmt.Errorf("describing secret %s: %w", a.SecretID, err)
		return f
	}
	f.ARN, f.KMSKeyID, f.Stages = aws.ToString(d.ARN), aws.ToString(d.KmsKeyId), d.VersionIdsToStages
	f.Deleted = d.DeletedDate != nil
	for _, t := range d.Tags {
		f.TagKeys = append(f.TagKeys, aws.ToString(t.Key))
	}
	if f.KMSKeyID != "" {
		f.Key = g.key(ctx, f.KMSKeyID, false)
	}
	if f.Deleted {
		return f
	}
	f.Rotation = g.rotation(ctx, a)
	c, cancel = bounded(ctx)
	v, err := g.d.SecretsManager.GetSecretValue(c, &secretsmanager.GetSecretValueInput{SecretId: aws.String(a.SecretID),
		VersionStage: aws.String(vault.StageCurrent)})
	cancel()
	if err != nil {
		f.ValueErr = fmt.Errorf("reading %s of secret %s: %w", vault.StageCurrent, a.SecretID, err)
		return f
	}
	f.CurrentVersion = aws.ToString(v.VersionId)
	if v.SecretString == nil {
		f.ValueErr = fmt.Errorf("reading %s of secret %s: the version holds binary data, not a JSON string", vault.StageCurrent, a.SecretID)
		return f
	}
	// vault.Decode's errors name the field and never quote the value.
	rec, err := vault.Decode([]byte(*v.SecretString), vault.Format(cfg.SecretFormat))
	if err != nil {
		f.ValueErr = fmt.Errorf("parsing %s (version %s) of secret %s: %w", vault.StageCurrent, f.CurrentVersion, a.SecretID, err)
		return f
	}
	f.RecordClientID = rec.ClientID
	f.TokenTried = true
	c, cancel = bounded(ctx)
	_, f.TokenErr = g.d.LWA.Token(c, rec.ClientID, rec.ClientSecret)
	cancel()
	return f
}

// rotation reads the application's secret as the daemon does, when doctor was given the reader.
func (g *gatherer) rotation(ctx context.Context, a config.Application) *RotationFacts {
	if g.d.Vault == nil {
		return nil
	}
	i := slices.IndexFunc(g.d.Apps, func(m rotator.App) bool { return m.Name == a.Name })
	if i < 0 {
		return nil
	}
	c, cancel := bounded(ctx)
	snap, err := g.d.Vault.Read(c, a.SecretID)
	cancel()
	clk := g.d.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	return &RotationFacts{App: g.d.Apps[i], Snapshot: withoutSecrets(snap), Err: err, At: clk.Now()}
}

// withoutSecrets drops the secret values from a snapshot: the decision never reads them, and the
// facts never hold one.
func withoutSecrets(s vault.Snapshot) vault.Snapshot {
	s.Current.Record.ClientSecret = secret.Value{}
	if s.Pending != nil {
		p := *s.Pending
		p.Record.ClientSecret = secret.Value{}
		s.Pending = &p
	}
	return s
}

func (g *gatherer) endpoints(ctx context.Context, cfg *config.Config) []EndpointFacts {
	var out []EndpointFacts
	index := map[string]int{}
	for _, a := range cfg.Applications {
		if i, ok := index[a.Region]; ok {
			out[i].Apps = append(out[i].Apps, a.Name)
			continue
		}
		index[a.Region] = len(out)
		out = append(out, EndpointFacts{Region: a.Region, URL: spapiEndpoint(cfg, a.Region), Apps: []string{a.Name}})
	}
	client := g.d.HTTP
	if client == nil {
		client = defaultHTTPClient()
	}
	for i := range out {
		probe(ctx, client, &out[i])
	}
	return out
}

func spapiEndpoint(cfg *config.Config, region string) string {
	if u := cfg.Endpoints.SPAPI[region]; u != "" {
		return strings.TrimRight(u, "/")
	}
	u, err := spapi.DefaultEndpoint(spapi.Region(region))
	if err != nil {
		return "" // config validation refuses unknown regions; an empty URL fails the probe loudly
	}
	return u
}

// probe proves the endpoint answers: for https, a verified TLS handshake; any HTTP status will
// do, since HEAD / is not an SP-API operation. No rotate call is made.
func probe(ctx context.Context, client *http.Client, e *EndpointFacts) {
	e.Plain = strings.HasPrefix(e.URL, "http://")
	c, cancel := bounded(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(c, http.MethodHead, e.URL+"/", nil)
	if err != nil {
		e.Err = fmt.Errorf("building a request to %s: %w", e.URL, err)
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		e.Err = fmt.Errorf("HEAD %s/: %w", e.URL, err)
		return
	}
	resp.Body.Close()
	e.Status = resp.StatusCode
	if resp.TLS != nil {
		e.TLSVersion = tls.VersionName(resp.TLS.Version)
	}
}

func defaultHTTPClient() *http.Client {
	return &http.Client{Timeout: callTimeout, Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 15 * time.Second,
	},
		// The first answer proves the endpoint is there; a redirect elsewhere proves nothing more.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
