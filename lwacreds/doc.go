// Package lwacreds is for the applications that use the LWA client secret lwa-rotator keeps
// fresh. It reads the client id and secret from Secrets Manager in the shape the daemon stores
// (either secretFormat), keeps them cached, and mints LWA access tokens with them, so that an
// application's SP-API calls keep working across a rotation and after the old secret dies.
//
// It imports the vault record codec and the spapi error kinds, never the daemon.
//
// # Why the cache is refreshed hourly
//
// After Amazon mints a new secret, the old one keeps working for seven days. The daemon moves
// AWSCURRENT to the new secret within minutes of that, so a consumer that re-reads AWSCURRENT
// every DefaultRefreshInterval (one hour) switches about 167 hours before the old secret dies,
// and a missed refresh or two (Secrets Manager briefly unreachable: the cached value is kept
// and the read retried) changes nothing. A longer interval only saves Secrets Manager reads,
// which cost little next to an SP-API outage; anything near seven days defeats the purpose.
// The cache also never waits for the interval when LWA has just refused the cached secret.
//
// # Which secret is tried, in what order
//
// AWSCURRENT always comes first: the daemon only moves that label to a secret that has just
// minted an LWA token, so it is the one most likely to work and the only one that keeps working.
// When LWA answers invalid_client, the caller reports it (Store.Rejected) and the Store re-reads
// AWSCURRENT at once, because the usual cause is that the daemon promoted a new secret and the
// cached one died. Only when the freshly read AWSCURRENT is the very secret LWA refused (a new
// secret Amazon has not yet propagated, or a secret seeded by hand with a mistake) does the Store
// fall back to AWSPREVIOUS, and only while the previousClientSecretExpiryTime recorded in the
// AWSCURRENT record has not passed: after that moment the previous secret is dead at Amazon, and
// trying it would only add a second refusal. A zero (unrecorded) previous expiry means "unknown"
// and gives no fallback. The fallback lasts until the next periodic refresh, which forgets every
// refusal and so tries AWSCURRENT again.
package lwacreds
