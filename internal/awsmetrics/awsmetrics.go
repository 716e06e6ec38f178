// Package awsmetrics adds a middleware to the AWS SDK that reports every request attempt (service,
// operation, HTTP status, duration) and logs failed attempts with their request id.
package awsmetrics

import (
	"context"
	"strings"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
)

// Observer receives one call per request attempt; status is 0 when no response arrived.
type Observer interface {
	ObserveRequest(api, operation string, status int, d time.Duration)
}

// Middleware returns an APIOptions entry for aws.Config.
func Middleware(obs Observer, clk clock.Clock, log *zap.Logger) func(*middleware.Stack) error {
	if log == nil {
		log = zap.NewNop()
	}
	return func(stack *middleware.Stack) error {
		return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("LWARotatorMetrics",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				start := clk.Now()
				out, md, err := next.HandleDeserialize(ctx, in)
				status := 0
				if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && resp != nil {
					status = resp.StatusCode
				}
				api := serviceLabel(awsmiddleware.GetServiceID(ctx))
				op := awsmiddleware.GetOperationName(ctx)
				if ctx.Err() != nil {
					return out, md, err // cancelled by shutdown or a caller's deadline: not the service's doing
				}
				obs.ObserveRequest(api, op, status, clk.Now().Sub(start))
				if err != nil || status >= 400 {
					reqID, _ := awsmiddleware.GetRequestIDMetadata(md)
					// 4xx answers are often expected (a version not yet staged); the caller decides.
					lvl := zap.DebugLevel
					if status == 0 || status >= 500 || status == 429 {
						lvl = zap.WarnLevel
					}
					log.Log(lvl, "AWS request failed", zap.String("api", api), zap.String("operation", op),
						zap.Int("status", status), zap.String("request_id", reqID), zap.Error(err))
				}
				return out, md, err
			}), middleware.Before)
	}
}

// serviceLabel turns "Secrets Manager" into "secretsmanager": bounded and label-friendly.
func serviceLabel(id string) string {
	return strings.ToLower(strings.ReplaceAll(id, " ", ""))
}
