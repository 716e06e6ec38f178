package fakesm

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

func notFound(msg string) error {
	return &types.ResourceNotFoundException{Message: aws.String(msg)}
}

func invalidParam(msg string) error {
	return &types.InvalidParameterException{Message: aws.String(msg)}
}

// validation is the error the service's input constraints (lengths, patterns) produce before
// the operation runs; the SDK has no type for it.
func validation(msg string) error {
	return &smithy.GenericAPIError{Code: "ValidationException", Message: msg, Fault: smithy.FaultClient}
}
