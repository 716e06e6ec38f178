package doctor

import (
	"encoding/json"
	"strings"
)

// AmazonAccount is the AWS account SP-API delivers notifications from.
const AmazonAccount = "437568002678"

// amazonRoot is how deploy/iam's templates name Amazon's account.
const amazonRoot = "arn:aws:iam::" + AmazonAccount + ":root"

// Statement is one policy statement in the key order AWS's own examples use, so a fix printed
// from it can be pasted into a policy as is.
type Statement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal"`
	Action    []string                     `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// AmazonQueueStatement is the queue policy statement that lets Amazon deliver to queueARN:
// deploy/iam/queue-policy.json's AmazonSpApiNotificationsDeliver with ${QueueArn} filled in
// (a test in deploy/iam holds the two equal).
func AmazonQueueStatement(queueARN string) Statement {
	return Statement{Sid: "AmazonSpApiNotificationsDeliver", Effect: "Allow", Principal: map[string]string{"AWS": amazonRoot},
		Action: []string{"sqs:GetQueueAttributes", "sqs:SendMessage"}, Resource: queueARN}
}

// AmazonKeyStatement is the key policy statement that lets Amazon encrypt into an SSE-KMS queue
// in region: deploy/iam/kms-key-policy.json's AmazonSpApiNotificationsViaSqs with ${Region}
// filled in.
func AmazonKeyStatement(region string) Statement {
	return Statement{Sid: "AmazonSpApiNotificationsViaSqs", Effect: "Allow", Principal: map[string]string{"AWS": amazonRoot},
		Action: []string{"kms:Decrypt", "kms:GenerateDataKey"}, Resource: "*",
		Condition: map[string]map[string]string{"StringEquals": {"kms:ViaService": "sqs." + region + ".amazonaws.com"}}}
}

// PolicyDocument wraps statements in a complete policy, for a resource that has none yet.
func PolicyDocument(statements ...Statement) string {
	return indent(struct {
		Version   string      `json:"Version"`
		Statement []Statement `json:"Statement"`
	}{"2012-10-17", statements})
}

// JSON renders the statement indented, ready to paste.
func (s Statement) JSON() string { return indent(s) }

func indent(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// Marshalling strings and maps of strings cannot fail.
		panic(err)
	}
	return string(b)
}

// arnRegion returns the region field of an ARN ("arn:aws:sqs:us-east-1:…" → "us-east-1").
func arnRegion(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[3]
}
