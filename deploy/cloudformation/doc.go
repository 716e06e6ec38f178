// Package cloudformation holds the CloudFormation templates (lwa-rotator.yaml, the base stack;
// lwa-rotator-ecs.yaml, the ECS Fargate service). It has no Go code: its tests validate the
// templates against the CloudFormation resource specification and check their security statements.
package cloudformation
