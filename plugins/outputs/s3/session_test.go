package s3

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
)

func TestSessionRegion(t *testing.T) {
	isolateAWSEnv(t)
	if r := mustOutput(t, "bucket: b\nregion: eu-west-1").awsConf.Region; r != "eu-west-1" {
		t.Errorf("configured region gave %q", r)
	}
	t.Setenv("AWS_REGION", "ap-south-1")
	if r := mustOutput(t, "bucket: b").awsConf.Region; r != "ap-south-1" {
		t.Errorf("region from the environment gave %q", r)
	}
	if r := mustOutput(t, "bucket: b\nregion: eu-west-1").awsConf.Region; r != "eu-west-1" {
		t.Errorf("the field should win over the environment, got %q", r)
	}
}

func TestSessionStaticCredentials(t *testing.T) {
	isolateAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "ENVKEY")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
	o := mustOutput(t, `
bucket: b
credentials:
  id: CONFKEY
  secret: confsecret
  token: conftoken
`)
	creds, err := o.awsConf.Credentials.Retrieve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "CONFKEY" || creds.SecretAccessKey != "confsecret" || creds.SessionToken != "conftoken" {
		t.Errorf("configured static credentials not used (got key %q)", creds.AccessKeyID)
	}

	// Without the fields the default chain applies.
	o = mustOutput(t, "bucket: b")
	if creds, err = o.awsConf.Credentials.Retrieve(t.Context()); err != nil || creds.AccessKeyID != "ENVKEY" {
		t.Errorf("default chain: key %q, %v", creds.AccessKeyID, err)
	}
}

func TestSessionProfileWinsOverStaticKeys(t *testing.T) {
	isolateAWSEnv(t)
	dir := t.TempDir()
	credFile := filepath.Join(dir, "credentials")
	if err := os.WriteFile(credFile, []byte("[archive]\naws_access_key_id = PROFILEKEY\naws_secret_access_key = profilesecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credFile)
	o := mustOutput(t, `
bucket: b
credentials:
  profile: archive
  id: CONFKEY
  secret: confsecret
`)
	creds, err := o.awsConf.Credentials.Retrieve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "PROFILEKEY" {
		t.Errorf("profile credentials not used (got key %q)", creds.AccessKeyID)
	}
}

func TestSessionRoleAndEC2(t *testing.T) {
	isolateAWSEnv(t)
	o := mustOutput(t, `
bucket: b
credentials:
  id: CONFKEY
  secret: confsecret
  role: arn:aws:iam::123456789012:role/hookpipe-writer
  role_external_id: ext-1
`)
	cache, ok := o.awsConf.Credentials.(*aws.CredentialsCache)
	if !ok || !cache.IsCredentialsProvider(&stscreds.AssumeRoleProvider{}) {
		t.Errorf("role should be assumed, credentials are %T", o.awsConf.Credentials)
	}

	o = mustOutput(t, `
bucket: b
credentials:
  role: arn:aws:iam::123456789012:role/hookpipe-writer
  from_ec2_role: true
`)
	cache, ok = o.awsConf.Credentials.(*aws.CredentialsCache)
	if !ok || !cache.IsCredentialsProvider(&ec2rolecreds.Provider{}) {
		t.Errorf("from_ec2_role should take precedence, credentials are %T", o.awsConf.Credentials)
	}
}

func TestSessionEndpointOnlyForS3(t *testing.T) {
	isolateAWSEnv(t)
	o := mustOutput(t, "bucket: b\nendpoint: http://127.0.0.1:7070\nforce_path_style_urls: true")
	if o.awsConf.BaseEndpoint != nil {
		t.Errorf("endpoint leaked into the shared AWS config (STS would use it): %q", *o.awsConf.BaseEndpoint)
	}
	c := o.newClient()
	if opts := c.Options(); opts.BaseEndpoint == nil || *opts.BaseEndpoint != "http://127.0.0.1:7070" || !opts.UsePathStyle {
		t.Errorf("S3 client options: endpoint %v path style %v", opts.BaseEndpoint, opts.UsePathStyle)
	}
}
