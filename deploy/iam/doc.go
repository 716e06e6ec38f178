// Package iam holds the daemon's least-privilege IAM policy, the SQS queue policy and the KMS key
// policy as JSON templates. Its tests parse the daemon's Go source to prove the identity policy
// grants exactly the AWS calls the daemon makes, and that Amazon's SP-API notification principal
// gets exactly the access delivery needs. See README.md.
package iam
