package doctor

import (
	"strings"
	"testing"
)

const testQueueARN = "arn:aws:sqs:us-east-1:111122223333:lwa-expiry"

func sendRequest(action string) request {
	return request{PrincipalKind: "AWS", Principal: AmazonAccount, Action: action, Resource: testQueueARN,
		Context: map[string]string{"aws:securetransport": "true"}}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy string
		action string
		want   string
		public bool
	}{
		{"principal as account id, action string", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"sqs:SendMessage","Resource":"` + testQueueARN + `"}}`,
			"sqs:SendMessage", "allowed", false},
		{"principal root ARN in a list, action list", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::999999999999:root","arn:aws:iam::437568002678:root"]},"Action":["sqs:GetQueueAttributes","sqs:SendMessage"],"Resource":["` + testQueueARN + `"]}]}`,
			"sqs:GetQueueAttributes", "allowed", false},
		{"action wildcard sqs:*", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"sqs:*","Resource":"` + testQueueARN + `"}]}`,
			"sqs:SendMessage", "allowed", false},
		{"action case-insensitive, resource wildcard", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"SQS:sendmessage","Resource":"arn:aws:sqs:us-east-1:111122223333:lwa-*"}]}`,
			"sqs:SendMessage", "allowed", false},
		{"principal star is allowed but public", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:SendMessage","Resource":"` + testQueueARN + `"}]}`,
			"sqs:SendMessage", "allowed", true},
		{"principal AWS star", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sqs:SendMessage","Resource":"*"}]}`,
			"sqs:SendMessage", "allowed", true},
		{"other account only", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sqs:*","Resource":"*"}]}`,
			"sqs:SendMessage", "not-allowed", false},
		{"other action only", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"sqs:GetQueueAttributes","Resource":"*"}]}`,
			"sqs:SendMessage", "not-allowed", false},
		{"other queue only", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"sqs:SendMessage","Resource":"arn:aws:sqs:us-east-1:111122223333:other"}]}`,
			"sqs:SendMessage", "not-allowed", false},
		{"explicit deny wins", `{"Statement":[{"Sid":"A","Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"sqs:*","Resource":"*"},{"Sid":"D","Effect":"Deny","Principal":"*","Action":"sqs:SendMessage","Resource":"*"}]}`,
			"sqs:SendMessage", "denied", false},
		{"deny without TLS does not apply to Amazon", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"sqs:SendMessage","Resource":"*"},{"Effect":"Deny","Principal":"*","Action":"sqs:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":false}}}]}`,
			"sqs:SendMessage", "allowed", false},
		{"deny with NotPrincipal excluding Amazon", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"sqs:SendMessage","Resource":"*"},{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::437568002678:root"},"Action":"sqs:SendMessage","Resource":"*"}]}`,
			"sqs:SendMessage", "allowed", false},
		{"deny with NotAction hits", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"sqs:SendMessage","Resource":"*"},{"Effect":"Deny","Principal":"*","NotAction":"sqs:ReceiveMessage","Resource":"*"}]}`,
			"sqs:SendMessage", "denied", false},
		{"allow under an unknown condition", `{"Statement":[{"Sid":"Ip","Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"sqs:SendMessage","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`,
			"sqs:SendMessage", "unknown", false},
		{"deny under an unknown condition", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"sqs:SendMessage","Resource":"*"},{"Sid":"Vpc","Effect":"Deny","Principal":"*","Action":"sqs:*","Resource":"*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-1"}}}]}`,
			"sqs:SendMessage", "unknown", false},
		{"service principal does not match an account", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"*"}]}`,
			"sqs:SendMessage", "not-allowed", false},
		{"no policy statements match", `{"Statement":[]}`, "sqs:SendMessage", "not-allowed", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc, err := parsePolicy(tc.policy)
			if err != nil {
				t.Fatalf("parsePolicy: %v", err)
			}
			v := evaluate(doc, sendRequest(tc.action))
			if v.State != tc.want || v.Public != tc.public {
				t.Errorf("evaluate = %+v, want state %s public %v", v, tc.want, tc.public)
			}
		})
	}
}

func TestKMSConditions(t *testing.T) {
	t.Parallel()
	key := "arn:aws:kms:us-east-1:111122223333:key/k"
	via := map[string]string{"kms:viaservice": "sqs.us-east-1.amazonaws.com", "aws:securetransport": "true"}
	tests := []struct {
		name, policy, want string
	}{
		{"the deploy/iam statement", AmazonKeyStatement("us-east-1").JSON(), "allowed"},
		{"ViaService of another region", AmazonKeyStatement("eu-west-1").JSON(), "not-allowed"},
		{"ViaService like", `{"Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"kms:*","Resource":"*","Condition":{"StringLike":{"kms:ViaService":"sqs.*.amazonaws.com"}}}`, "allowed"},
		{"GenerateDataKey* pattern", `{"Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":["kms:GenerateDataKey*","kms:Decrypt"],"Resource":"*"}`, "allowed"},
		{"ViaService IfExists", `{"Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"kms:GenerateDataKey","Resource":"*","Condition":{"StringEqualsIfExists":{"kms:ViaService":"sqs.us-east-1.amazonaws.com"}}}`, "allowed"},
		{"unmodelled operator", `{"Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"kms:GenerateDataKey","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"x"}}}`, "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc, err := parsePolicy(`{"Statement":` + tc.policy + `}`)
			if err != nil {
				t.Fatal(err)
			}
			r := request{PrincipalKind: "AWS", Principal: AmazonAccount, Action: "kms:GenerateDataKey", Resource: key, Context: via}
			if v := evaluate(doc, r); v.State != tc.want {
				t.Errorf("evaluate = %+v, want %s", v, tc.want)
			}
		})
	}
}

// A policy parse error names the element, never quotes what the policy holds.
func TestParsePolicyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ policy, want string }{
		{`not json amzn1.oa2-cs.v1.SECRET`, "not valid JSON"},
		{`{"Version":"2012-10-17"}`, "no Statement"},
		{`{"Statement":[{"Effect":"Maybe","Action":"sqs:*"}]}`, "neither Allow nor Deny"},
		{`{"Statement":[{"Effect":"Allow","Principal":"amzn1.oa2-cs.v1.SECRET","Action":"sqs:*"}]}`, "malformed"},
		{`{"Statement":[{"Effect":"Allow","Action":{"x":"amzn1.oa2-cs.v1.SECRET"}}]}`, "malformed"},
	}
	for _, tc := range tests {
		_, err := parsePolicy(tc.policy)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parsePolicy(%.30q) = %v, want an error containing %q", tc.policy, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("parse error quotes the policy: %v", err)
		}
	}
}

func TestWildcard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"a*c", "abbbc", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"sqs:*", "sqs:SendMessage", true}, {"arn:aws:sqs:*:*:q", "arn:aws:sqs:us-east-1:1:q", true}, {"x", "xy", false},
	}
	for _, tc := range tests {
		if got := wildcard(tc.p, tc.s); got != tc.want {
			t.Errorf("wildcard(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}
