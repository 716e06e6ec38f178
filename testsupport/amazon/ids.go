package amazon

import (
	"crypto/rand"
	"encoding/hex"
	"io"

	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// IDs makes up the values Amazon invents. Amazon's are random; a seeded source makes a run
// repeat exactly.
type IDs interface {
	ClientSecret() secret.Value // a new client secret
	AccessToken() string        // a new grantless access token
	UUID() string               // a notification, subscription or application id
}

// RandomIDs draws from crypto/rand, in Amazon's formats.
func RandomIDs() IDs { return readerIDs{rand.Reader} }

// IDsFrom draws from r in Amazon's formats: pass a seeded math/rand/v2 ChaCha8 for a
// deterministic run. r must not fail.
func IDsFrom(r io.Reader) IDs { return readerIDs{r} }

type readerIDs struct{ r io.Reader }

func (g readerIDs) bytes(n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(g.r, b); err != nil {
		panic("amazon: reading random bytes: " + err.Error()) // crypto/rand and ChaCha8 never fail
	}
	return b
}

func (g readerIDs) ClientSecret() secret.Value {
	return secret.New("amzn1.oa2-cs.v1." + hex.EncodeToString(g.bytes(32)))
}

func (g readerIDs) AccessToken() string { return "Atc|" + hex.EncodeToString(g.bytes(32)) }

func (g readerIDs) UUID() string {
	b := g.bytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
