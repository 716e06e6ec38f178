package doctor

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/internal/operator/status"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// Bounds the checks enforce; docs/operations.md explains each.
const (
	// minMaxReceiveCount: below it one crash (the message comes back when its visibility
	// expires) plus one failed attempt sends a good new secret to the dead-letter queue.
	minMaxReceiveCount = 3
	// goodMaxReceiveCount: a transient failure (LWA or Secrets Manager unreachable) brings a
	// message back after the rotator's backoff of 5 s doubling to 5 min, jittered down to half.
	// Ten receives cover at least about 10 minutes of such trouble before a good secret is
	// dead-lettered.
	goodMaxReceiveCount = 10
	// minRetention: SQS's default. Shorter, and an outage of the daemon over a long weekend
	// drops an unread new secret from the queue.
	minRetention = 4 * 24 * time.Hour
	// goodRetention: the old secret lives 7 days after a rotation (oldClientSecretExpiryTime in
	// every published example). Once it has died the unread message is the only copy of the one
	// working secret, so it should outlive the old secret.
	goodRetention = 7 * 24 * time.Hour
	// maxSecretTags is Secrets Manager's limit per secret; every tag counts, not only ours.
	maxSecretTags = vault.MaxTags
)

// daemonTagKeys are the tags the daemon may write on each secret: the vault's own list (a test in
// deploy/iam holds it equal to vault's Tag* constants).
var daemonTagKeys = vault.StateTags

// DaemonTagKeys returns the tag keys the checks reserve room for on each secret.
func DaemonTagKeys() []string { return slices.Clone(daemonTagKeys) }

// Check turns facts into the checklist. It is pure: same configuration and facts, same items.
func Check(cfg *config.Config, f Facts) Report {
	var items []Item
	items = append(items, checkConfiguredKey(f.Key)...)
	for _, q := range f.Queues {
		items = append(items, checkQueue(cfg, f.Key, q)...)
	}
	for _, a := range f.Apps {
		items = append(items, checkApp(cfg, f.Key, f.Settings, a)...)
	}
	for _, e := range f.Endpoints {
		items = append(items, checkEndpoint(e))
	}
	if f.Listing.Tried {
		items = append(items, checkListing(f.Listing))
	}
	return newReport(items)
}

// checkListing: the listing grant is optional, so a refusal warns. Without it the daemon reads
// each secret on its own, which costs what docs/security.md ("The listing grant") says.
func checkListing(l ListingFacts) Item {
	const id, subject = "secrets-listing", "secretsmanager:ListSecrets"
	switch {
	case l.Err == nil:
		return okItem(id, subject, "allowed: start-up, passes over many applications and the request watch list the secrets")
	case isAccessDenied(l.Err):
		return item(id, subject, Warn,
			"refused: the daemon reads each secret on its own (one DescribeSecret per application per pass, request tags one secret a second)",
			`grant secretsmanager:ListSecrets and secretsmanager:BatchGetSecretValue on "*" (statement SecretsManagerListSecrets in deploy/iam/daemon-policy.json), or keep it refused on purpose (docs/security.md, "The listing grant")`)
	default:
		return item(id, subject, Warn, l.Err.Error(), "check the credentials, region and network path to AWS, then run doctor again")
	}
}

func item(id, subject string, s Status, summary, fix string) Item {
	return Item{ID: id, Subject: subject, Status: s, Summary: summary, Fix: fix}
}

func okItem(id, subject, summary string) Item { return item(id, subject, OK, summary, "") }

// accessFix names the permission a denied read needs.
func accessFix(err error, action, resource, policyFile string) string {
	if isAccessDenied(err) {
		return fmt.Sprintf("grant %s on %s to the identity running doctor (%s)", action, resource, policyFile)
	}
	return "check the credentials, region and network path to AWS, then run doctor again"
}

func isAccessDenied(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && strings.Contains(ae.ErrorCode(), "AccessDenied")
}

func isQueueMissing(err error) bool {
	var nf *sqstypes.QueueDoesNotExist
	if errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "AWS.SimpleQueueService.NonExistentQueue" || ae.ErrorCode() == "QueueDoesNotExist")
}

func isSecretMissing(err error) bool {
	var nf *smtypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

// checkConfiguredKey: the kmsKeyId of the configuration must be a usable customer-managed key,
// or no secret can be judged against it.
func checkConfiguredKey(k *KeyFacts) []Item {
	const id = "kms-key"
	switch {
	case k.DescribeErr != nil:
		return []Item{item(id, k.ID, Fail, k.DescribeErr.Error(),
			"set kmsKeyId to the id, ARN or alias of an existing customer-managed key; "+accessFix(k.DescribeErr, "kms:DescribeKey", "the key", "deploy/iam/daemon-policy.json"))}
	case k.Manager != "CUSTOMER":
		return []Item{item(id, k.ID, Fail, fmt.Sprintf("key %s is %s-managed, not customer-managed", k.ARN, k.Manager),
			"create a customer-managed key (deploy/iam/kms-key-policy.json) and set kmsKeyId to it: an AWS-managed key cannot be scoped to the daemon or granted to Amazon's account")}
	case k.State != "Enabled":
		return []Item{item(id, k.ID, Fail, fmt.Sprintf("key %s is %s", k.ARN, k.State),
			fmt.Sprintf("aws kms enable-key --key-id %s (or cancel its deletion): nothing encrypted with it can be read while it is not enabled", k.ARN))}
	}
	return []Item{okItem(id, k.ID, fmt.Sprintf("customer-managed key %s, enabled", k.ARN))}
}

func checkQueue(cfg *config.Config, cfgKey *KeyFacts, q QueueFacts) []Item {
	s := q.URL
	if q.Err != nil {
		fix := accessFix(q.Err, "sqs:GetQueueAttributes", s, "deploy/iam/daemon-policy.json")
		if isQueueMissing(q.Err) {
			fix = fmt.Sprintf("create the queue (standard, SSE, with a dead-letter queue and the queue policy: README, 'Before you start') or correct the queue URL in the configuration (%s)",
				strings.Join(configFields(q.Uses), ", "))
		}
		return []Item{item("queue-exists", s, Fail, q.Err.Error(), fix)}
	}
	arn := q.Attrs["QueueArn"]
	items := []Item{okItem("queue-exists", s, fmt.Sprintf("queue %s (%s)", arn, strings.Join(configFields(q.Uses), ", ")))}
	items = append(items, checkStandard(s, q.Attrs))
	items = append(items, checkSSE(s, cfgKey, q.Attrs))
	if q.Key != nil || q.Attrs["KmsMasterKeyId"] != "" {
		items = append(items, checkQueueKeyPolicy(s, arn, q))
	}
	items = append(items, checkQueuePolicy(s, arn, q.Attrs))
	items = append(items, checkRetention(s, q.Attrs))
	items = append(items, checkDeadLetter(cfg, s, q)...)
	return items
}

func configFields(uses []string) []string {
	var out []string
	for _, u := range uses {
		out = append(out, "queues."+u)
	}
	return out
}

// checkStandard: Amazon's notifications go to standard queues only; a FIFO queue never
// receives them and the subscription fails.
func checkStandard(s string, a map[string]string) Item {
	if a["FifoQueue"] == "true" {
		return item("queue-standard", s, Fail, "the queue is a FIFO queue: SP-API notifications are delivered to standard queues only",
			"create a standard queue (a queue's type cannot be changed), register it for the notification in the Developer Console and put its URL in the configuration")
	}
	return okItem("queue-standard", s, "standard queue")
}

// checkSSE: the new-secret message carries a client secret in plaintext.
func checkSSE(s string, cfgKey *KeyFacts, a map[string]string) Item {
	switch {
	case a["KmsMasterKeyId"] != "":
		return okItem("queue-sse", s, "SSE-KMS with key "+a["KmsMasterKeyId"])
	case a["SqsManagedSseEnabled"] == "true":
		return okItem("queue-sse", s, "SSE-SQS (SQS-managed key)")
	}
	key := cfgKey.ARN
	if key == "" {
		key = cfgKey.ID
	}
	return item("queue-sse", s, Fail, "the queue has no server-side encryption, and its new-secret messages carry a client secret in plaintext",
		fmt.Sprintf("aws sqs set-queue-attributes --queue-url %s --attributes KmsMasterKeyId=%s (and add Amazon's statement to the key policy), or --attributes SqsManagedSseEnabled=true", s, key))
}

// checkQueueKeyPolicy: with SSE-KMS, Amazon's sender encrypts with the queue's key as
// 437568002678; without kms:GenerateDataKey and kms:Decrypt on it, delivery fails silently.
func checkQueueKeyPolicy(s, queueARN string, q QueueFacts) Item {
	const id = "queue-key-policy"
	region := arnRegion(queueARN)
	stmt := AmazonKeyStatement(region).JSON()
	k := q.Key
	keyName := q.Attrs["KmsMasterKeyId"]
	switch {
	case keyName == "alias/aws/sqs" || k != nil && k.DescribeErr == nil && k.Manager == "AWS":
		return item(id, s, Fail, fmt.Sprintf("the queue uses the AWS-managed key %s, which cannot be granted to Amazon's account %s", keyName, AmazonAccount),
			fmt.Sprintf("switch the queue to a customer-managed key (aws sqs set-queue-attributes --queue-url %s --attributes KmsMasterKeyId=KEY_ARN) whose key policy has:\n%s", s, stmt))
	case k == nil:
		return item(id, s, Fail, "the queue names a KMS key doctor did not read", "run doctor again")
	case k.DescribeErr != nil:
		return item(id, s, Fail, k.DescribeErr.Error(),
			"make KmsMasterKeyId name an existing customer-managed key; "+accessFix(k.DescribeErr, "kms:DescribeKey", "the queue's key", "deploy/iam/daemon-policy.json"))
	case k.State != "Enabled":
		return item(id, s, Fail, fmt.Sprintf("the queue's key %s is %s: nothing can be delivered", k.ARN, k.State),
			fmt.Sprintf("aws kms enable-key --key-id %s", k.ARN))
	case k.PolicyErr != nil:
		return item(id, s, Fail, k.PolicyErr.Error(), accessFix(k.PolicyErr, "kms:GetKeyPolicy", k.ARN, "deploy/iam/doctor-policy.json"))
	}
	doc, err := parsePolicy(k.Policy)
	if err != nil {
		return item(id, s, Fail, fmt.Sprintf("the key policy of %s cannot be read: %v", k.ARN, err),
			fmt.Sprintf("fix the key policy of %s so it is valid JSON and has:\n%s", k.ARN, stmt))
	}
	ctx := map[string]string{"kms:viaservice": "sqs." + region + ".amazonaws.com", "aws:securetransport": "true",
		"aws:principalaccount": AmazonAccount}
	// Amazon's sender is account 437568002678 calling through SQS; a key policy may also grant it
	// as the SQS service principal limited to that source account.
	viaService := map[string]string{"aws:sourceaccount": AmazonAccount, "aws:securetransport": "true", "aws:sourcearn": queueARN}
	var missing, denied, unsure []string
	for _, action := range []string{"kms:GenerateDataKey", "kms:Decrypt"} {
		v := evaluate(doc, request{PrincipalKind: "AWS", Principal: AmazonAccount, Action: action, Resource: k.ARN, Context: ctx})
		if v.State == "not-allowed" {
			if w := evaluate(doc, request{PrincipalKind: "Service", Principal: "sqs.amazonaws.com", Action: action, Resource: k.ARN, Context: viaService}); w.State != "not-allowed" {
				v = w
			}
		}
		switch v.State {
		case "denied":
			denied = append(denied, fmt.Sprintf("%s (statement %s)", action, v.Sid))
		case "not-allowed":
			missing = append(missing, action)
		case "unknown":
			unsure = append(unsure, fmt.Sprintf("%s (statement %s)", action, v.Sid))
		}
	}
	switch {
	case len(denied) > 0:
		return item(id, s, Fail, fmt.Sprintf("the key policy of %s denies Amazon's account %s %s", k.ARN, AmazonAccount, strings.Join(denied, ", ")),
			"remove or narrow the Deny statement so it does not match Amazon's deliveries through SQS")
	case len(missing) > 0:
		return item(id, s, Fail, fmt.Sprintf("the key policy of %s does not let Amazon's account %s use %s: deliveries to this SSE-KMS queue fail silently", k.ARN, AmazonAccount, strings.Join(missing, " and ")),
			fmt.Sprintf("add this statement to the key policy of %s (aws kms put-key-policy --key-id %s --policy-name default --policy file://policy.json):\n%s", k.ARN, k.ARN, stmt))
	case len(unsure) > 0:
		return item(id, s, Warn, fmt.Sprintf("Amazon's use of key %s depends on conditions doctor cannot evaluate: %s", k.ARN, strings.Join(unsure, ", ")),
			"check that those conditions hold for SQS deliveries from account "+AmazonAccount+", or add:\n"+stmt)
	}
	return okItem(id, s, fmt.Sprintf("key policy of %s lets %s use kms:GenerateDataKey and kms:Decrypt through SQS", k.ARN, AmazonAccount))
}

// checkQueuePolicy: Amazon's account needs sqs:SendMessage and sqs:GetQueueAttributes on the
// queue, or the subscription cannot be created and nothing is delivered.
func checkQueuePolicy(s, arn string, a map[string]string) Item {
	const id = "queue-policy"
	stmt := AmazonQueueStatement(arn)
	raw := a["Policy"]
	if raw == "" {
		return item(id, s, Fail, fmt.Sprintf("the queue has no policy, so Amazon's account %s cannot send to it", AmazonAccount),
			"set the queue's Policy attribute to (deploy/iam/queue-policy.json has the same with a TLS-only statement):\n"+PolicyDocument(stmt))
	}
	doc, err := parsePolicy(raw)
	if err != nil {
		return item(id, s, Fail, "the queue policy cannot be read: "+err.Error(), "replace the queue's Policy with a valid document that has:\n"+stmt.JSON())
	}
	ctx := map[string]string{"aws:securetransport": "true", "aws:principalaccount": AmazonAccount}
	var missing, denied, unsure []string
	public := false
	for _, action := range []string{"sqs:SendMessage", "sqs:GetQueueAttributes"} {
		v := evaluate(doc, request{PrincipalKind: "AWS", Principal: AmazonAccount, Action: action, Resource: arn, Context: ctx})
		switch v.State {
		case "denied":
			denied = append(denied, fmt.Sprintf("%s (statement %s)", action, v.Sid))
		case "not-allowed":
			missing = append(missing, action)
		case "unknown":
			unsure = append(unsure, fmt.Sprintf("%s (statement %s)", action, v.Sid))
		case "allowed":
			public = public || v.Public
		}
	}
	switch {
	case len(denied) > 0:
		return item(id, s, Fail, fmt.Sprintf("the queue policy denies Amazon's account %s %s", AmazonAccount, strings.Join(denied, ", ")),
			"remove or narrow the Deny statement so it does not match Amazon's deliveries (HTTPS, account "+AmazonAccount+")")
	case len(missing) > 0:
		return item(id, s, Fail, fmt.Sprintf("the queue policy does not allow Amazon's account %s %s on %s", AmazonAccount, strings.Join(missing, " and "), arn),
			"add this statement to the queue's Policy:\n"+stmt.JSON())
	case len(unsure) > 0:
		return item(id, s, Warn, "Amazon's access depends on conditions doctor cannot evaluate: "+strings.Join(unsure, ", "),
			"check those conditions hold for Amazon's deliveries, or add:\n"+stmt.JSON())
	case public:
		return item(id, s, Warn, "the queue policy lets every principal (\"*\") send to the queue, not only Amazon's account",
			"replace the open statement with:\n"+stmt.JSON())
	}
	return okItem(id, s, fmt.Sprintf("queue policy allows %s sqs:SendMessage and sqs:GetQueueAttributes", AmazonAccount))
}

func retention(a map[string]string) (time.Duration, bool) {
	n, err := strconv.Atoi(a["MessageRetentionPeriod"])
	if err != nil {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

func days(d time.Duration) string {
	return strconv.FormatFloat(d.Hours()/24, 'f', -1, 64) + " days"
}

// checkRetention: an unread new secret must survive an outage of the daemon; see the bounds.
func checkRetention(s string, a map[string]string) Item {
	const id = "queue-retention"
	r, ok := retention(a)
	fix := fmt.Sprintf("aws sqs set-queue-attributes --queue-url %s --attributes MessageRetentionPeriod=1209600 (14 days, the maximum)", s)
	switch {
	case !ok:
		return item(id, s, Fail, "the queue reports no MessageRetentionPeriod", fix)
	case r < minRetention:
		return item(id, s, Fail, fmt.Sprintf("messages are kept %s: an outage of the daemon longer than that loses an unread new secret", days(r)), fix)
	case r < goodRetention:
		return item(id, s, Warn, fmt.Sprintf("messages are kept %s, less than the 7 days the old secret lives after a rotation: after a longer outage the new secret may be gone while nothing else works", days(r)), fix)
	}
	return okItem(id, s, fmt.Sprintf("messages are kept %s", days(r)))
}

// checkDeadLetter: refused messages (malformed, unknown client, a secret LWA rejects) are never
// deleted; without a dead-letter queue they come back forever and are never seen.
func checkDeadLetter(cfg *config.Config, s string, q QueueFacts) []Item {
	const id = "queue-dlq"
	dlqName := s[strings.LastIndex(s, "/")+1:] + "-dlq"
	create := fmt.Sprintf("create a standard queue %s with SSE and MessageRetentionPeriod=1209600, then: aws sqs set-queue-attributes --queue-url %s --attributes '{\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"DLQ_ARN\\\",\\\"maxReceiveCount\\\":\\\"%d\\\"}\"}'",
		dlqName, s, goodMaxReceiveCount)
	switch {
	case q.RedriveErr != nil:
		return []Item{item(id, s, Fail, "the redrive policy cannot be read: "+q.RedriveErr.Error(), create)}
	case q.DLQ == nil:
		return []Item{item(id, s, Fail, "the queue has no redrive policy: messages the daemon refuses come back forever and never reach a dead-letter queue", create)}
	case q.DLQ.Err != nil:
		fix := create
		if isAccessDenied(q.DLQ.Err) {
			fix = accessFix(q.DLQ.Err, "sqs:GetQueueUrl and sqs:GetQueueAttributes", q.DLQ.ARN, "deploy/iam/doctor-policy.json and daemon-policy.json")
		}
		return []Item{item(id, s, Fail, "the dead-letter queue of the redrive policy is not there: "+q.DLQ.Err.Error(), fix)}
	}
	d := q.DLQ
	items := []Item{}
	if (d.Attrs["FifoQueue"] == "true") != (q.Attrs["FifoQueue"] == "true") {
		items = append(items, item(id, s, Fail, fmt.Sprintf("dead-letter queue %s is not of the same type (standard or FIFO) as the queue", d.ARN), create))
	} else {
		items = append(items, okItem(id, s, "dead-letter queue "+d.ARN))
	}
	items = append(items, checkMaxReceive(cfg, s, q))
	if d.Attrs["KmsMasterKeyId"] == "" && d.Attrs["SqsManagedSseEnabled"] != "true" {
		items = append(items, item("dlq-sse", d.URL, Fail, "the dead-letter queue has no server-side encryption, and a refused new-secret message carries a client secret",
			fmt.Sprintf("aws sqs set-queue-attributes --queue-url %s --attributes KmsMasterKeyId=KEY_ARN (or SqsManagedSseEnabled=true)", d.URL)))
	} else {
		items = append(items, okItem("dlq-sse", d.URL, "dead-letter queue is encrypted"))
	}
	dr, ok1 := retention(d.Attrs)
	qr, ok2 := retention(q.Attrs)
	if ok1 && ok2 && dr < qr {
		// For standard queues a message keeps its original enqueue time in the DLQ.
		items = append(items, item("dlq-retention", d.URL, Warn, fmt.Sprintf("the dead-letter queue keeps messages %s, less than the queue's %s: a message expires by its first enqueue time, so it can vanish from the DLQ before anyone looks", days(dr), days(qr)),
			fmt.Sprintf("aws sqs set-queue-attributes --queue-url %s --attributes MessageRetentionPeriod=1209600", d.URL)))
	} else if ok1 {
		items = append(items, okItem("dlq-retention", d.URL, fmt.Sprintf("dead-letter queue keeps messages %s", days(dr))))
	}
	return items
}

// checkMaxReceiveCount: the daemon's transient retries must not dead-letter a good secret, and
// refused messages must reach the DLQ before they expire.
func checkMaxReceive(cfg *config.Config, s string, q QueueFacts) Item {
	const id = "queue-max-receive"
	n := q.MaxReceiveCount
	retry := cfg.Queues.RejectedRetry.D()
	fix := fmt.Sprintf("set maxReceiveCount to %d in the queue's RedrivePolicy (aws sqs set-queue-attributes --queue-url %s --attributes RedrivePolicy=…)", goodMaxReceiveCount, s)
	r, ok := retention(q.Attrs)
	switch {
	case n < minMaxReceiveCount:
		return item(id, s, Fail, fmt.Sprintf("maxReceiveCount is %d: one crash and one failed attempt send a good new secret to the dead-letter queue", n), fix)
	case ok && time.Duration(n)*retry >= r:
		return item(id, s, Fail, fmt.Sprintf("maxReceiveCount %d × queues.rejectedRetry %s is not shorter than the retention of %s: refused messages expire before they reach the dead-letter queue", n, retry, days(r)),
			fmt.Sprintf("lower maxReceiveCount or queues.rejectedRetry until their product is well inside %s", days(r)))
	case n < goodMaxReceiveCount:
		return item(id, s, Warn, fmt.Sprintf("maxReceiveCount is %d: the daemon's backoff on transient failures (5 s doubling to 5 min) rides out less than about 10 minutes of LWA or Secrets Manager trouble before a good secret is dead-lettered", n), fix)
	}
	return okItem(id, s, fmt.Sprintf("maxReceiveCount %d; refused messages reach the dead-letter queue after about %s", n, time.Duration(n)*retry))
}

func checkApp(cfg *config.Config, cfgKey *KeyFacts, set rotator.Settings, a AppFacts) []Item {
	s := a.Name
	if a.DescribeErr != nil {
		fix := accessFix(a.DescribeErr, "secretsmanager:DescribeSecret", a.SecretID, "deploy/iam/daemon-policy.json")
		if isSecretMissing(a.DescribeErr) {
			fix = fmt.Sprintf("create it with the configured key and the current secret: lwa-rotator seed --app %s, or aws secretsmanager create-secret --name %s --kms-key-id %s --secret-string file://first-secret.json", a.Name, a.SecretID, cfgKey.ID)
		}
		return []Item{item("secret-exists", s, Fail, a.DescribeErr.Error(), fix)}
	}
	if a.Deleted {
		return []Item{item("secret-exists", s, Fail, fmt.Sprintf("secret %s is scheduled for deletion", a.ARN),
			fmt.Sprintf("aws secretsmanager restore-secret --secret-id %s", a.ARN))}
	}
	items := []Item{okItem("secret-exists", s, "secret "+a.ARN)}
	if it, ok := checkSecretKey(cfgKey, a); ok {
		items = append(items, it)
	}
	items = append(items, checkRecord(a))
	as := assess(a, set)
	items = append(items, checkPending(a, as))
	items = append(items, checkTags(a))
	if a.TokenTried {
		items = append(items, checkToken(cfg, a))
	}
	if as != nil {
		items = append(items, checkRotation(a, *as))
	}
	return items
}

// assess is status's judgement of the daemon's read: the daemon's decision at the time of the
// read, and whether it needs a person. Nil when doctor did not read the secret as the daemon does.
func assess(a AppFacts, set rotator.Settings) *status.Assessment {
	r := a.Rotation
	if r == nil {
		return nil
	}
	as := status.Assess(status.State{App: r.App, Snapshot: r.Snapshot, ReadErr: r.Err}, set, r.At)
	return &as
}

// checkRotation reports the daemon's decision (phase, reason, next action) and warns on what
// lwa-rotator status calls attention: the read failed, no AWSCURRENT, the current secret expired,
// or the daemon should already have acted.
func checkRotation(a AppFacts, as status.Assessment) Item {
	const id = "rotation"
	d := as.Decision
	summary := fmt.Sprintf("phase %s (%s): %s", d.Phase, d.Reason, d.Reason.Explain())
	if !d.NextActionAt.IsZero() {
		summary += "; the daemon acts next at " + d.NextActionAt.UTC().Format(time.RFC3339Nano)
	}
	if as.Attention {
		if a.Rotation.Err != nil {
			summary = "phase " + d.Phase.String()
		}
		return item(id, a.Name, Warn, summary+"; "+strings.Join(as.Problems, "; "), as.Action)
	}
	return okItem(id, a.Name, summary)
}

// checkSecretKey: the secret must be encrypted with the configured customer key. It is skipped
// when that key itself could not be read: kms-key has already failed.
func checkSecretKey(cfgKey *KeyFacts, a AppFacts) (Item, bool) {
	const id = "secret-key"
	if cfgKey.DescribeErr != nil {
		return Item{}, false
	}
	fix := fmt.Sprintf("aws secretsmanager update-secret --secret-id %s --kms-key-id %s", a.SecretID, cfgKey.ARN)
	switch {
	case a.KMSKeyID == "":
		return item(id, a.Name, Fail, "the secret is encrypted with the AWS-managed key aws/secretsmanager, not the configured customer-managed key", fix), true
	case a.Key == nil || a.Key.DescribeErr != nil:
		msg := "the secret's key was not read"
		if a.Key != nil {
			msg = a.Key.DescribeErr.Error()
		}
		return item(id, a.Name, Fail, msg, fix), true
	case a.Key.ARN != cfgKey.ARN:
		return item(id, a.Name, Fail, fmt.Sprintf("the secret is encrypted with %s, not the configured key %s", a.Key.ARN, cfgKey.ARN), fix), true
	}
	return okItem(id, a.Name, "encrypted with the configured key "+cfgKey.ARN), true
}

// checkRecord: AWSCURRENT must hold a record the daemon can read, for the configured client.
func checkRecord(a AppFacts) Item {
	const id = "secret-record"
	switch {
	case a.ValueErr != nil:
		fix := "store the current secret as {\"clientId\":\"…\",\"clientSecret\":\"…\"} (vault/README.md), for example with lwa-rotator seed --app " + a.Name
		switch {
		case isDecryptionFailure(a.ValueErr):
			fix = decryptFix(a)
		case isAccessDenied(a.ValueErr):
			fix = accessFix(a.ValueErr, "secretsmanager:GetSecretValue (and kms:Decrypt via Secrets Manager)", a.SecretID, "deploy/iam/daemon-policy.json")
		}
		return item(id, a.Name, Fail, a.ValueErr.Error(), fix)
	case a.RecordClientID != a.ClientID:
		return item(id, a.Name, Fail, fmt.Sprintf("AWSCURRENT (version %s) holds client id %s, but the configuration says %s", a.CurrentVersion, a.RecordClientID, a.ClientID),
			"put the application's own client id and secret in the secret, or correct clientId in the configuration")
	}
	return okItem(id, a.Name, fmt.Sprintf("AWSCURRENT (version %s) is a readable record for client %s", a.CurrentVersion, a.RecordClientID))
}

// isDecryptionFailure: KMS refused to decrypt the stored value. Secrets Manager says so with
// DecryptionFailure; the KMS codes are there in case its refusal is passed through as KMS's own.
func isDecryptionFailure(err error) bool {
	var df *smtypes.DecryptionFailure
	if errors.As(err, &df) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && slices.Contains([]string{"DecryptionFailure", "KMSDisabledException", "KMSInvalidStateException", "DisabledException"}, ae.ErrorCode())
}

// decryptFix names the cause of a refused decryption: the secret itself is fine, so storing it
// again would not help, while its key is not enabled nothing encrypted with it can be read.
func decryptFix(a AppFacts) string {
	key := a.KMSKeyID
	if a.Key != nil && a.Key.ARN != "" {
		key = a.Key.ARN
	}
	if key == "" {
		key = "aws/secretsmanager"
	}
	enable := "aws kms enable-key --key-id " + key
	if a.Key != nil && a.Key.DescribeErr == nil {
		switch a.Key.State {
		case "Disabled":
			return fmt.Sprintf("%s: Secrets Manager cannot decrypt the secret while its key is disabled", enable)
		case "PendingDeletion":
			return fmt.Sprintf("aws kms cancel-key-deletion --key-id %s, then %s: Secrets Manager cannot decrypt the secret while its key is pending deletion", key, enable)
		}
	}
	return fmt.Sprintf("KMS refused to decrypt the secret with key %s: if the key is disabled, %s (or cancel its deletion); otherwise grant kms:Decrypt on it through Secrets Manager to the identity running doctor (deploy/iam/daemon-policy.json)", key, enable)
}

// checkPending: a version labelled AWSPENDING that is not AWSCURRENT is a rotation the daemon has
// not finished. Its decision says what it does about it (verify and promote a newer secret, or
// remove the label from a stale one) and when; it warns, since only a daemon that runs settles it.
func checkPending(a AppFacts, as *status.Assessment) Item {
	const id = "secret-pending"
	pending := vault.PendingVersion(a.Stages)
	if as == nil || a.Rotation.Err != nil {
		// Without the daemon's read, the labels alone: what the daemon makes of the version is unknown.
		if pending == "" {
			return okItem(id, a.Name, "no AWSPENDING version left behind")
		}
		return item(id, a.Name, Warn, fmt.Sprintf("version %s is AWSPENDING, and doctor could not read the secret as the daemon does to say what the daemon does with it", pending),
			"make the secret readable (see the rotation and secret-record checks), then run doctor again")
	}
	d, p := as.Decision, a.Rotation.Snapshot.Pending
	if d.Phase != rotator.PhasePending || p == nil {
		return okItem(id, a.Name, "no AWSPENDING version left behind")
	}
	summary := fmt.Sprintf("version %s is AWSPENDING (%s): %s; the daemon acts at %s", p.ID, d.Reason, d.Reason.Explain(), d.NextActionAt.UTC().Format(time.RFC3339Nano))
	if d.Reason == rotator.ReasonStalePending {
		return item(id, a.Name, Warn, summary,
			fmt.Sprintf("a running daemon removes the label at its next pass; if it stays, check that the daemon runs, or remove it yourself: aws secretsmanager update-secret-version-stage --secret-id %s --version-stage AWSPENDING --remove-from-version-id %s", a.SecretID, p.ID))
	}
	return item(id, a.Name, Warn, summary,
		"a running daemon verifies and promotes it at its next pass; if it stays, check that the daemon runs and that LWA accepts the new secret (docs/runbooks/LWANewSecretNotPromoted.md). Keep the label: the version holds the newest secret")
}

// checkTags: TagResource fails once a secret has 50 tags, and the daemon's state lives in tags.
func checkTags(a AppFacts) Item {
	const id = "secret-tags"
	foreign := 0
	for _, k := range a.TagKeys {
		if !strings.HasPrefix(k, "lwa-rotator:") {
			foreign++
		}
	}
	need := foreign + len(daemonTagKeys)
	if need > maxSecretTags {
		return item(id, a.Name, Fail, fmt.Sprintf("the secret has %d other tags; with the daemon's %d it would need %d, over Secrets Manager's limit of %d: saving the rotation state would fail", foreign, len(daemonTagKeys), need, maxSecretTags),
			fmt.Sprintf("remove at least %d tags that are not lwa-rotator:* from secret %s", need-maxSecretTags, a.SecretID))
	}
	return okItem(id, a.Name, fmt.Sprintf("%d other tags + %d for the daemon, within %d", foreign, len(daemonTagKeys), maxSecretTags))
}

// checkToken: a grantless token minted with AWSCURRENT proves client id, secret and LWA.
func checkToken(cfg *config.Config, a AppFacts) Item {
	const id = "lwa-token"
	endpoint := cfg.Endpoints.LWA
	if endpoint == "" {
		endpoint = spapi.DefaultLWAEndpoint
	}
	if a.TokenErr == nil {
		return okItem(id, a.Name, "AWSCURRENT minted a grantless LWA token at "+endpoint)
	}
	fix := "check the network path to " + endpoint + " and run doctor again"
	if errors.Is(a.TokenErr, spapi.ErrInvalidClient) || errors.Is(a.TokenErr, spapi.ErrUnauthorized) {
		fix = "LWA refuses the stored client id and secret: if the secret expired or was rotated elsewhere, get the working one from the Developer Console and store it with lwa-rotator seed --app " + a.Name + " --force"
	}
	// spapi errors are scrubbed of secrets and tokens.
	return item(id, a.Name, Fail, "AWSCURRENT did not mint a token: "+a.TokenErr.Error(), fix)
}

// checkEndpoint: the rotate call goes to this host; doctor proves it answers (no rotate call).
func checkEndpoint(e EndpointFacts) Item {
	const id = "spapi-endpoint"
	s := e.Region
	switch {
	case e.Err != nil:
		return item(id, s, Fail, e.Err.Error(), fmt.Sprintf("allow HTTPS from this host to %s (firewall, proxy: HTTPS_PROXY is honoured); applications: %s", e.URL, strings.Join(e.Apps, ", ")))
	case e.Plain:
		return okItem(id, s, fmt.Sprintf("%s answered HTTP %d (plain http on loopback, allowed by allowInsecureLoopback: no TLS to check)", e.URL, e.Status))
	}
	return okItem(id, s, fmt.Sprintf("%s answered over %s (HTTP %d)", e.URL, e.TLSVersion, e.Status))
}
