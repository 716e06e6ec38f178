package fakesm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

// Page sizes the API allows.
const (
	MaxListResults  = 100
	MaxBatchResults = 20
)

func (f *SM) ListSecrets(_ context.Context, in *sm.ListSecretsInput, _ ...func(*sm.Options)) (*sm.ListSecretsOutput, error) {
	flt := f.begin(OpListSecrets, "")
	return finish(flt, func() (*sm.ListSecretsOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		page, next, err := f.page(in.Filters, in.MaxResults, in.NextToken)
		if err != nil {
			return nil, err
		}
		out := &sm.ListSecretsOutput{NextToken: next}
		for _, s := range page {
			out.SecretList = append(out.SecretList, types.SecretListEntry{ARN: aws.String(s.arn), Name: aws.String(s.name),
				KmsKeyId: optional(s.kmsKeyID), Description: optional(s.description), Tags: s.tagList(),
				SecretVersionsToStages: s.labelled(), CreatedDate: timePtr(s.created), LastChangedDate: timePtr(s.changed)})
		}
		return out, nil
	})
}

// BatchGetSecretValue answers a SecretIdList, as vault.Store calls it; the Filters form, which no
// caller uses, is refused rather than modelled.
func (f *SM) BatchGetSecretValue(_ context.Context, in *sm.BatchGetSecretValueInput, _ ...func(*sm.Options)) (*sm.BatchGetSecretValueOutput, error) {
	flt := f.begin(OpBatchGetSecretValue, "")
	return finish(flt, func() (*sm.BatchGetSecretValueOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch {
		case len(in.Filters) > 0:
			return nil, invalidParam("this model answers SecretIdList only; Filters are not modelled")
		case len(in.SecretIdList) == 0:
			return nil, invalidParam("Specify either SecretIdList or Filters.")
		case len(in.SecretIdList) > MaxBatchResults:
			return nil, validation(fmt.Sprintf("SecretIdList can name at most %d secrets, got %d", MaxBatchResults, len(in.SecretIdList)))
		case in.MaxResults != nil || in.NextToken != nil:
			return nil, invalidParam("MaxResults and NextToken apply to Filters only.")
		}
		out := &sm.BatchGetSecretValueOutput{}
		for _, id := range in.SecretIdList {
			s, err := f.lookup(aws.String(id))
			if err == nil {
				var e types.SecretValueEntry
				if e, err = s.currentValue(); err == nil {
					out.SecretValues = append(out.SecretValues, e)
					continue
				}
			}
			// A secret that cannot be read is reported beside the others, not as the call's error.
			out.Errors = append(out.Errors, types.APIErrorType{SecretId: aws.String(id), ErrorCode: aws.String(errorCode(err)),
				Message: aws.String(err.Error())})
		}
		return out, nil
	})
}

func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return "InternalServiceError"
}

func (s *secret) currentValue() (types.SecretValueEntry, error) {
	id := s.holder(stageCurrent)
	if id == "" {
		return types.SecretValueEntry{}, notFound("Secrets Manager can't find the specified secret value for staging label: AWSCURRENT")
	}
	v := s.versions[id]
	return types.SecretValueEntry{ARN: aws.String(s.arn), Name: aws.String(s.name), VersionId: aws.String(id),
		SecretString: cloneStr(v.str), SecretBinary: bytes.Clone(v.bin), VersionStages: slices.Clone(v.stages),
		CreatedDate: timePtr(v.created)}, nil
}

// page returns the secrets matching filters from the position token names, at most max (or
// MaxListResults) of them, and the token of the rest. The token is the index of the next secret
// in creation order; the caller holds f.mu.
func (f *SM) page(filters []types.Filter, max *int32, token *string) ([]*secret, *string, error) {
	n := MaxListResults
	if max != nil {
		if *max < 1 || int(*max) > MaxListResults {
			return nil, nil, validation(fmt.Sprintf("MaxResults must be between 1 and %d, got %d", MaxListResults, *max))
		}
		n = int(*max)
	}
	start := 0
	if token != nil {
		i, err := strconv.Atoi(strings.TrimPrefix(*token, "fakesm-"))
		if err != nil || !strings.HasPrefix(*token, "fakesm-") || i < 0 || i > len(f.order) {
			return nil, nil, &types.InvalidNextTokenException{Message: aws.String("The NextToken value is invalid.")}
		}
		start = i
	}
	if err := checkFilters(filters); err != nil {
		return nil, nil, err
	}
	var out []*secret
	for i := start; i < len(f.order); i++ {
		s := f.secrets[f.order[i]]
		if !s.matches(filters) {
			continue
		}
		if len(out) == n {
			return out, aws.String("fakesm-" + strconv.Itoa(i)), nil
		}
		out = append(out, s)
	}
	return out, nil, nil
}

// The Filter type's constraints: at most 10 filters, each with 1 to 10 values of at most 512
// characters from a small set (a leading ! negates).
const (
	maxFilters      = 10
	maxFilterValues = 10
	maxFilterValue  = 512
)

var filterValue = regexp.MustCompile(`^!?[a-zA-Z0-9 :_@/+=.\-!]*$`)

func checkFilters(filters []types.Filter) error {
	if len(filters) > maxFilters {
		return validation(fmt.Sprintf("Filters can hold at most %d filters, got %d", maxFilters, len(filters)))
	}
	for _, flt := range filters {
		switch flt.Key {
		case types.FilterNameStringTypeName, types.FilterNameStringTypeTagKey:
		default:
			// The daemon filters on name and tag-key only; other keys are refused, not modelled.
			return invalidParam(fmt.Sprintf("filter key %q is not modelled", flt.Key))
		}
		if n := len(flt.Values); n < 1 || n > maxFilterValues {
			return validation(fmt.Sprintf("filter %s must have 1 to %d values, got %d", flt.Key, maxFilterValues, n))
		}
		for _, v := range flt.Values {
			if len(v) > maxFilterValue || !filterValue.MatchString(v) {
				return validation(fmt.Sprintf("a value of filter %s is longer than %d characters or has characters the API refuses", flt.Key, maxFilterValue))
			}
		}
	}
	return nil
}

// matches applies the documented filter rules: every filter must match; within one filter any
// value may; a value starting with ! negates; name and tag-key match a case-sensitive prefix.
func (s *secret) matches(filters []types.Filter) bool {
	for _, flt := range filters {
		any := false
		for _, val := range flt.Values {
			neg := strings.HasPrefix(val, "!")
			val = strings.TrimPrefix(val, "!")
			if s.matchOne(flt.Key, val) != neg {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	return true
}

func (s *secret) matchOne(key types.FilterNameStringType, val string) bool {
	if key == types.FilterNameStringTypeTagKey {
		return slices.ContainsFunc(s.tagOrder, func(k string) bool { return strings.HasPrefix(k, val) })
	}
	return strings.HasPrefix(s.name, val)
}
