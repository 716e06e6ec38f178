package notifications

import "testing"

func TestDeadLetterURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, queue, policy, want string
		ok                        bool
	}{
		{"aws", "https://sqs.us-east-1.amazonaws.com/123456789012/lwa-new-secret",
			`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:lwa-new-secret-dlq","maxReceiveCount":"5"}`,
			"https://sqs.us-east-1.amazonaws.com/123456789012/lwa-new-secret-dlq", true},
		{"moto", "http://127.0.0.1:5000/123456789012/q", `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:q-dlq","maxReceiveCount":5}`,
			"http://127.0.0.1:5000/123456789012/q-dlq", true},
		{"no redrive policy", "https://sqs.us-east-1.amazonaws.com/1/q", "", "", false},
		{"garbage", "https://sqs.us-east-1.amazonaws.com/1/q", "{", "", false},
	}
	for _, tc := range tests {
		got, ok := deadLetterURL(tc.queue, map[string]string{"RedrivePolicy": tc.policy})
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: deadLetterURL = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
