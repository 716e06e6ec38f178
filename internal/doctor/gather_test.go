package doctor

import "testing"

func TestParseRedrive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     string
		arn     string
		count   int
		wantErr bool
	}{
		{`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:q-dlq","maxReceiveCount":10}`, "arn:aws:sqs:us-east-1:1:q-dlq", 10, false},
		{`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:q-dlq","maxReceiveCount":"5"}`, "arn:aws:sqs:us-east-1:1:q-dlq", 5, false},
		{`{"maxReceiveCount":5}`, "", 0, true},
		{`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:q-dlq","maxReceiveCount":"many"}`, "", 0, true},
		{`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:q-dlq"}`, "", 0, true},
		{`{`, "", 0, true},
	}
	for _, tc := range tests {
		arn, n, err := parseRedrive(tc.raw)
		if (err != nil) != tc.wantErr || arn != tc.arn || n != tc.count {
			t.Errorf("parseRedrive(%s) = %q, %d, %v; want %q, %d, error %v", tc.raw, arn, n, err, tc.arn, tc.count, tc.wantErr)
		}
	}
}
