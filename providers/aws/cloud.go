package aws

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	"github.com/swarmsync/swarmsync/providers"
)

// Defaults for Options.
const (
	DefaultMaxAttempts = 10
	DefaultMaxBackoff  = 20 * time.Second
	// PageSize is the MaxResults of every DescribeInstances page (EC2's maximum).
	PageSize = 1000
	// TerminateBatch is the most ids one TerminateInstances call carries.
	TerminateBatch = 1000
	// LaunchBatch is the most instances one RunInstances call asks for.
	LaunchBatch = 1000
)

// RetryableCodes are the EC2 error codes retried with backoff, on top of
// the SDK's defaults (which already retry HTTP 5xx and throttling).
var RetryableCodes = map[string]struct{}{
	"RequestLimitExceeded": {},
	"InternalError":        {},
	"InternalFailure":      {},
	"ServiceUnavailable":   {},
	"Unavailable":          {},
}

// RequestTimeout bounds one HTTP attempt of an EC2 or ELBv2 call.
const RequestTimeout = 30 * time.Second

// Options configure a Cloud. Region is required unless the AWS
// configuration chain (AWS_REGION, shared config) provides one.
type Options struct {
	// Region is the spec's provider.aws.region.
	Region string
	// Endpoint overrides the EC2 endpoint (tests, emulators). Without it the
	// SDK honours AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL.
	Endpoint string
	// ELBEndpoint overrides the ELBv2 endpoint (default: Endpoint). Without
	// either the SDK honours AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2 /
	// AWS_ENDPOINT_URL.
	ELBEndpoint string
	// HTTPClient replaces the SDK's HTTP client for EC2 calls.
	HTTPClient *http.Client
	// RequestTimeout bounds one HTTP attempt of the SDK's own client
	// (default RequestTimeout; not applied to HTTPClient).
	RequestTimeout time.Duration
	// Credentials replaces the default credential chain (env, shared
	// config, SSO, instance profile).
	Credentials awssdk.CredentialsProvider
	// Clock drives the client-side rate limiter (default: wall clock).
	Clock Clock
	// MaxAttempts per API call, retries included (default DefaultMaxAttempts).
	MaxAttempts int
	// MaxBackoff between attempts (default DefaultMaxBackoff).
	MaxBackoff time.Duration
	// Backoff, when set, replaces the SDK's exponential jitter backoff.
	// The SDK sleeps it on the wall clock.
	Backoff func(attempt int) time.Duration
	// Budgets override DefaultBudgets per operation name.
	Budgets map[string]Rate
	// APIOptions are extra SDK middleware (request counting in tests).
	APIOptions []func(*middleware.Stack) error
	// Logger receives structured logs (default: discard). Credentials and
	// user data are never logged.
	Logger *slog.Logger
}

// Cloud is providers.Cloud on EC2.
type Cloud struct {
	client  *ec2.Client
	elb     *elb.Client
	limiter *limiter
	log     *slog.Logger
}

var _ providers.Cloud = (*Cloud)(nil)

// New loads the AWS configuration (default chain) and returns a Cloud for
// opts.Region.
func New(ctx context.Context, opts Options) (*Cloud, error) {
	if opts.Clock == nil {
		opts.Clock = wallClock{}
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	load := []func(*config.LoadOptions) error{
		config.WithRetryer(newRetryer(opts)),
		// The SDK's own warnings (e.g. IMDS fallbacks) would reach stderr
		// outside any view; what matters is in the errors we return.
		config.WithLogger(logging.Nop{}),
	}
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	if opts.Credentials != nil {
		load = append(load, config.WithCredentialsProvider(opts.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("failed to load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("failed to configure EC2: no region: set provider.aws.region in the spec or AWS_REGION")
	}
	if cfg.Credentials != nil {
		cfg.Credentials = explainedCredentials{cfg.Credentials}
	}
	// Every HTTP attempt is bounded (the SDK's client has no overall
	// timeout): an endpoint that stops answering costs a pass RequestTimeout
	// per attempt, not forever. The loader's client keeps its TLS settings.
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		cfg.HTTPClient = bc.WithTimeout(cmp.Or(opts.RequestTimeout, RequestTimeout))
	}
	lim := newLimiter(opts.Clock, opts.Budgets)
	client := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = awssdk.String(opts.Endpoint)
		}
		// Set here, not in the shared config: the config loader wraps its own
		// client with AWS_CA_BUNDLE and refuses a plain *http.Client.
		if opts.HTTPClient != nil {
			o.HTTPClient = opts.HTTPClient
		}
		o.APIOptions = append(o.APIOptions, lim.addMiddleware)
		o.APIOptions = append(o.APIOptions, opts.APIOptions...)
	})
	if opts.ELBEndpoint == "" {
		opts.ELBEndpoint = opts.Endpoint
	}
	// ELBv2 has its own request buckets (not EC2's): its own limiter.
	elbLim := newLimiter(opts.Clock, nil)
	elbClient := elb.NewFromConfig(cfg, func(o *elb.Options) {
		if opts.ELBEndpoint != "" {
			o.BaseEndpoint = awssdk.String(opts.ELBEndpoint)
		}
		if opts.HTTPClient != nil {
			o.HTTPClient = opts.HTTPClient
		}
		o.APIOptions = append(o.APIOptions, elbLim.addMiddleware)
		o.APIOptions = append(o.APIOptions, opts.APIOptions...)
	})
	return &Cloud{client: client, elb: elbClient, limiter: lim, log: log.With("provider", "aws", "region", cfg.Region)}, nil
}

// newRetryer builds the SDK retryer: more attempts than the SDK's 3, the
// EC2 throttling and 5xx codes retried, and no client-side retry quota (the
// SDK's quota of 100 retries would give up in a throttling storm that the
// backoff and our request budget ride out).
func newRetryer(opts Options) func() awssdk.Retryer {
	return func() awssdk.Retryer {
		return retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = opts.MaxAttempts
			so.MaxBackoff = opts.MaxBackoff
			if opts.Backoff != nil {
				b := opts.Backoff
				so.Backoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) {
					return b(attempt), nil
				})
			}
			so.Retryables = append(so.Retryables, retry.RetryableErrorCode{Codes: RetryableCodes})
			so.RateLimiter = ratelimit.None
		})
	}
}

// ErrNoCredentials means the default credential chain found nothing usable.
var ErrNoCredentials = errors.New("no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
	"or AWS_PROFILE, or run where an instance profile is available")

// explainedCredentials turns the chain's failure into ErrNoCredentials, a
// message that says what to do instead of which sources were tried.
type explainedCredentials struct{ awssdk.CredentialsProvider }

func (p explainedCredentials) Retrieve(ctx context.Context) (awssdk.Credentials, error) {
	c, err := p.CredentialsProvider.Retrieve(ctx)
	if err != nil && ctx.Err() == nil {
		return c, ErrNoCredentials
	}
	return c, err
}
