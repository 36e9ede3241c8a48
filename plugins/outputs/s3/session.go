package s3

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/redpanda-data/benthos/v4/public/utils/netutil"
)

// defaultRegion is used when neither the config nor the environment names a
// region: requests must be signed for some region even against a custom
// endpoint, and us-east-1 is the one S3-compatible servers answer to by
// default.
const defaultRegion = "us-east-1"

// sessionFields are the AWS connection fields shared by every AWS component,
// with the names and meaning they have elsewhere in the ecosystem.
func sessionFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringField("region").
			Description("The AWS region of the bucket. When neither this field nor the environment (`AWS_REGION`, the shared config file) names one, `" + defaultRegion + "` is used.").
			Optional().
			Advanced(),
		service.NewStringField("endpoint").
			Description("A custom endpoint for the S3 API, such as `http://127.0.0.1:7070` for a local S3-compatible server. Usually paired with `force_path_style_urls: true`.").
			Optional().
			Advanced(),
		netutil.DialerConfigSpec(),
		service.NewObjectField("credentials",
			service.NewStringField("profile").
				Description("A profile from the shared credentials file (`~/.aws/credentials`) to use.").
				Optional(),
			service.NewStringField("id").
				Description("The access key ID of static credentials to use.").
				Optional().Advanced(),
			service.NewStringField("secret").
				Description("The secret access key of static credentials to use.").
				Optional().Advanced().Secret(),
			service.NewStringField("token").
				Description("The session token that goes with short-term static credentials.").
				Optional().Advanced().Secret(),
			service.NewBoolField("from_ec2_role").
				Description("Use the IAM role of the EC2 instance this process runs on, read from the instance metadata service. Takes precedence over every other credential source.").
				Optional(),
			service.NewStringField("role").
				Description("The ARN of a role to assume, with the credentials otherwise configured, before talking to S3.").
				Optional().Advanced(),
			service.NewStringField("role_external_id").
				Description("The external ID to present when assuming `role`.").
				Optional().Advanced(),
		).
			Description("Explicit AWS credentials. When left out, the SDK's default chain is used: environment variables, the shared credentials and config files, then container or instance roles.").
			Optional().
			Advanced(),
	}
}

// session holds the parsed AWS connection fields.
type session struct {
	region   string
	endpoint string

	profile        string
	id             string
	secret         string
	token          string
	fromEC2Role    bool
	role           string
	roleExternalID string

	dialer *netutil.DialerConfig
}

func sessionFromParsed(conf *service.ParsedConfig) (s session, err error) {
	optString := func(dst *string, path ...string) {
		if err == nil && conf.Contains(path...) {
			*dst, err = conf.FieldString(path...)
		}
	}
	optString(&s.region, "region")
	optString(&s.endpoint, "endpoint")
	optString(&s.profile, "credentials", "profile")
	optString(&s.id, "credentials", "id")
	optString(&s.secret, "credentials", "secret")
	optString(&s.token, "credentials", "token")
	optString(&s.role, "credentials", "role")
	optString(&s.roleExternalID, "credentials", "role_external_id")
	if err != nil {
		return s, err
	}
	if conf.Contains("credentials", "from_ec2_role") {
		if s.fromEC2Role, err = conf.FieldBool("credentials", "from_ec2_role"); err != nil {
			return s, err
		}
	}
	if conf.Contains("tcp") {
		d, err := netutil.DialerConfigFromParsed(conf.Namespace("tcp"))
		if err != nil {
			return s, err
		}
		if err := d.Validate(); err != nil {
			return s, fmt.Errorf("tcp: %w", err)
		}
		s.dialer = &d
	}
	if s.id != "" && s.secret == "" {
		return s, fmt.Errorf("credentials.id is set but credentials.secret is empty")
	}
	return s, nil
}

// httpClient is the HTTP client for every AWS call of one output. Its idle
// pool is sized to the output's concurrency so max_in_flight parallel PUTs
// reuse connections instead of opening new ones. It stays a BuildableClient
// so the SDK can still apply settings such as a custom CA bundle.
func (s session) httpClient(maxIdle int) (*awshttp.BuildableClient, error) {
	c := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, maxIdle)
		t.MaxIdleConns = max(t.MaxIdleConns, maxIdle)
	})
	if s.dialer != nil {
		var derr error
		c = c.WithDialerOptions(func(d *net.Dialer) { derr = netutil.DecorateDialer(d, *s.dialer) })
		if derr != nil {
			return nil, fmt.Errorf("tcp: %w", derr)
		}
	}
	return c, nil
}

// awsConfig resolves region and credentials. Precedence follows the fields'
// documentation: a profile, else static keys, else the default chain; a role
// is then assumed with those credentials; from_ec2_role replaces them all.
func (s session) awsConfig(ctx context.Context, hc aws.HTTPClient) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{config.WithHTTPClient(hc)}
	if s.region != "" {
		opts = append(opts, config.WithRegion(s.region))
	}
	switch {
	case s.profile != "":
		opts = append(opts, config.WithSharedConfigProfile(s.profile))
	case s.id != "":
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(s.id, s.secret, s.token)))
	}

	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("loading AWS config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}

	if s.role != "" {
		var roleOpts []func(*stscreds.AssumeRoleOptions)
		if s.roleExternalID != "" {
			externalID := s.roleExternalID
			roleOpts = append(roleOpts, func(o *stscreds.AssumeRoleOptions) { o.ExternalID = &externalID })
		}
		cfg.Credentials = aws.NewCredentialsCache(
			stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), s.role, roleOpts...))
	}
	if s.fromEC2Role {
		cfg.Credentials = aws.NewCredentialsCache(ec2rolecreds.New())
	}
	return cfg, nil
}
