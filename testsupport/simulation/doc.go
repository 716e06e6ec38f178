// Package simulation drives the real rotator, vault.Store, notifications.Consumer and
// notifications.Dispatcher through hundreds of simulated days against the project's one model of
// the world: testsupport/fakesm for Secrets Manager, testsupport/fakesqs for SQS and testsupport/amazon for
// Login with Amazon and the SP-API rotate endpoint. Faults and crashes are drawn from a seed and
// injected through the fakes' hooks, and the design's invariants are checked at every step. The
// tests hold only scenarios, fault schedules, invariant checks and the driver; this file only
// names the package.
package simulation
