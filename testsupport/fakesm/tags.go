package fakesm

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// Secrets Manager's tag rules (API reference, Tag and TagResource).
const (
	// MaxTags is the number of tags one secret may carry, counting those already on it;
	// tags with the reserved aws: prefix do not count.
	MaxTags = 50
	// MaxTagKey and MaxTagValue are the Tag type's length constraints, in characters.
	MaxTagKey   = 128
	MaxTagValue = 256
)

// tagChars is the character set AWS allows in tag keys and values: letters, spaces and numbers
// representable in UTF-8, and + - = . _ : / @.
var tagChars = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

func checkTagKey(k string) error {
	if n := utf8.RuneCountInString(k); n < 1 || n > MaxTagKey {
		return validation(fmt.Sprintf("tag key must be 1 to %d characters long, got %d", MaxTagKey, n))
	}
	if !tagChars.MatchString(k) {
		return invalidParam("tag key contains characters Secrets Manager does not allow")
	}
	return nil
}

// checkTags decides a tag write against the tags already there (nil for a new secret). The
// refusals name the limit, never the tag's value.
func checkTags(existing map[string]string, tags []types.Tag) error {
	after := map[string]bool{}
	for k := range existing {
		if !strings.HasPrefix(k, "aws:") {
			after[k] = true
		}
	}
	for _, t := range tags {
		k, v := aws.ToString(t.Key), aws.ToString(t.Value)
		if err := checkTagKey(k); err != nil {
			return err
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return invalidParam("tag keys starting with aws: are reserved for AWS use")
		}
		if n := utf8.RuneCountInString(v); n > MaxTagValue {
			return validation(fmt.Sprintf("tag value of key %s must be at most %d characters long, got %d", k, MaxTagValue, n))
		}
		if !tagChars.MatchString(v) {
			return invalidParam(fmt.Sprintf("tag value of key %s contains characters Secrets Manager does not allow", k))
		}
		after[k] = true
	}
	if len(after) > MaxTags {
		return invalidParam(fmt.Sprintf("a secret can have at most %d tags; this request would leave %d", MaxTags, len(after)))
	}
	return nil
}
