package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/health"
	"github.com/hookpipe/hookpipe/plugins/jsonwrite"
)

const (
	fieldBucket                  = "bucket"
	fieldPath                    = "path"
	fieldTags                    = "tags"
	fieldContentType             = "content_type"
	fieldContentEncoding         = "content_encoding"
	fieldCacheControl            = "cache_control"
	fieldContentDisposition      = "content_disposition"
	fieldContentLanguage         = "content_language"
	fieldWebsiteRedirectLocation = "website_redirect_location"
	fieldMetadata                = "metadata"
	fieldStorageClass            = "storage_class"
	fieldKMSKeyID                = "kms_key_id"
	fieldServerSideEncryption    = "server_side_encryption"
	fieldChecksumAlgorithm       = "checksum_algorithm"
	fieldObjectCannedACL         = "object_canned_acl"
	fieldForcePathStyleURLs      = "force_path_style_urls"
	fieldTimeout                 = "timeout"
	fieldBatching                = "batching"
)

func outputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Services", "AWS").
		Summary("Writes each message as one object to an S3 bucket, on AWS or any S3-compatible server.").
		Description(`
Every message that reaches this output, after any batching processors ran, is written as one object with a single
PutObject request. A message is acknowledged only after the server answered that PUT successfully, so an upstream
that waits for acknowledgement (such as hookpipe's webhook input) never reports success for an object that was not
stored.

== Object keys

`+"`path`"+` is an interpolated string, resolved for each message. To keep keys built from message data inside the
prefix the configuration intends, the resolved key is cleaned before use: leading slashes are removed, and any
path segment (between `+"`/`"+` or `+"`\\`"+`) that is exactly `+"`.`"+` or `+"`..`"+` has its dots written as
`+"`%2E`"+`. S3 itself treats keys as flat names, but tools and servers that map keys onto a file system (sync
tools, POSIX-backed gateways) would otherwise follow such segments out of the prefix. A key that resolves to nothing
fails that message.

Keys built only from message data (an event id, its date) make retries idempotent: a write that is retried after a
timeout overwrites the same object instead of adding a second copy. The default path, built from a counter and the
clock, does not have that property.

== Metadata

The message's metadata is attached to the object as user metadata (`+"`x-amz-meta-*`"+` headers) unless excluded
with `+"`metadata.exclude_prefixes`"+`. S3 limits user metadata to 2 KB per object, so exclude what downstream
readers do not need (for example the request headers an HTTP input records). Keys that are not valid HTTP header
names are left out; values with characters outside printable ASCII are sent encoded as RFC 2047 words, the form S3
itself uses for them.

== Tags

`+"`tags`"+` maps tag keys to interpolated values, resolved per message and sent with the PUT as the object's tag
set.

== Batching into NDJSON objects

To write many events per object, batch at the output and join each batch with an `+"`archive`"+` processor in
`+"`batching.processors`"+`: with `+"`format: lines`"+` the batch becomes one message holding one JSON document per
line (NDJSON, no trailing newline), which is then written as one object.

The path is resolved on that joined message, which is no longer a single JSON document, so `+"`json(...)`"+` cannot
be used in `+"`path`"+` for archived batches. The joined message keeps the metadata of the first message of its
batch: compute the parts of the key into metadata before the output, and add a `+"`group_by_value`"+` processor
ahead of the `+"`archive`"+` so that each object holds only events that share its partition. See the examples.

== Concurrency and failures

The messages of a batch are written concurrently, and `+"`max_in_flight`"+` bounds the PUTs in flight across all
batches of the output. When two messages of one batch resolve to the same key, that batch is written one message
after the other, in order, so the last one wins.

A failure that concerns one message (an interpolation error, a key that resolves to nothing, a request the server
rejects as invalid) fails only that message. A failure that concerns the server (no connection, a timeout, a 5xx
answer, throttling, denied access, a missing bucket) also fails the messages of the batch not yet started, without
trying them, so an outage is reported after one timeout rather than one per message. Failed messages are never
acknowledged; the input decides how they are retried.

A server that cannot be reached at all is not a failed write: when no PUT of a batch succeeded and one got no HTTP
answer (refused, reset, timed out), the batch is held, the output reports itself not connected (the engine's
`+"`/ready`"+` answers 503), and the engine reconnects with backoff (each attempt waits for any HTTP answer from the
server) and then writes the batch again. Connecting also waits for the server, so a server that is down at start-up
keeps the output not connected until it answers. The output adds a readiness probe, run by hookpipe's webhook input
for its `+"`/readyz`"+`, that fails while the server gives no answer.
`+service.OutputPerformanceDocs(true, true)).
		Fields(
			service.NewStringField(fieldBucket).
				Description("The bucket to write objects to."),
			service.NewInterpolatedStringField(fieldPath).
				Description("The key of each object, resolved per message. Leading slashes are removed and `.`/`..` segments escaped, see above.").
				Default(`${!counter()}-${!timestamp_unix_nano()}.txt`).
				Example(`${!counter()}-${!timestamp_unix_nano()}.txt`).
				Example(`provider=${! meta("webhook_provider") }/type=${! json("type") }/date=${! json("time").ts_parse("2006-01-02T15:04:05Z07:00").ts_format("2006-01-02", "UTC") }/${! json("id") }.json`).
				Example(`${! meta("s3_partition") }/${! meta("s3_id") }.ndjson`),
			service.NewInterpolatedStringMapField(fieldTags).
				Description("Tags to set on each object, as key/value pairs whose values are resolved per message.").
				Default(map[string]any{}).
				Example(map[string]any{
					"provider": `${! meta("webhook_provider") }`,
					"pipeline": "hookpipe",
				}),
			service.NewInterpolatedStringField(fieldContentType).
				Description("The Content-Type of each object.").
				Default("application/octet-stream").
				Example("application/x-ndjson").
				Example("application/cloudevents+json"),
			service.NewInterpolatedStringField(fieldContentEncoding).
				Description("The Content-Encoding of each object, for example `gzip` after a `compress` processor. Empty sends none.").
				Default("").
				Advanced(),
			service.NewInterpolatedStringField(fieldCacheControl).
				Description("The Cache-Control of each object. Empty sends none.").
				Default("").
				Advanced(),
			service.NewInterpolatedStringField(fieldContentDisposition).
				Description("The Content-Disposition of each object. Empty sends none.").
				Default("").
				Advanced(),
			service.NewInterpolatedStringField(fieldContentLanguage).
				Description("The Content-Language of each object. Empty sends none.").
				Default("").
				Advanced(),
			service.NewInterpolatedStringField(fieldWebsiteRedirectLocation).
				Description("The website redirect location of each object. Empty sends none.").
				Default("").
				Advanced(),
			service.NewMetadataExcludeFilterField(fieldMetadata).
				Description("Which metadata of a message is attached to its object as user metadata. All of it is, unless excluded here."),
			service.NewInterpolatedStringEnumField(fieldStorageClass,
				"STANDARD", "REDUCED_REDUNDANCY", "GLACIER", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "DEEP_ARCHIVE",
			).
				Description("The storage class of each object.").
				Default("STANDARD").
				Advanced(),
			service.NewStringField(fieldKMSKeyID).
				Description("A KMS key to encrypt objects with on the server. Setting it implies `server_side_encryption: aws:kms` unless that field says otherwise.").
				Default("").
				Advanced(),
			service.NewStringEnumField(fieldChecksumAlgorithm, "CRC32", "CRC32C", "SHA1", "SHA256").
				Description("An additional checksum the client computes for each object and the server verifies. Empty leaves the choice to the SDK, which sends a CRC32 by default.").
				Default("").
				Advanced(),
			service.NewStringField(fieldServerSideEncryption).
				Description("The server-side encryption algorithm, such as `AES256` or `aws:kms`. Empty sends none.").
				Default("").
				Advanced(),
			service.NewStringEnumField(fieldObjectCannedACL, cannedACLOptions()...).
				Description("A canned ACL for each object. Leave empty for buckets with ACLs disabled, which is the AWS default for buckets created since 2023.").
				Default("").
				Advanced(),
			service.NewBoolField(fieldForcePathStyleURLs).
				Description("Address the bucket in the URL path (`http://host/bucket/key`) instead of the host name. Most S3-compatible servers reached through `endpoint` need this.").
				Default(false).
				Advanced(),
			service.NewOutputMaxInFlightField(),
			service.NewDurationField(fieldTimeout).
				Description("How long one PUT, retries included, may take before it is abandoned and its message fails.").
				Default("5s").
				Advanced(),
			service.NewBatchPolicyField(fieldBatching),
		).
		Fields(sessionFields()...).
		Example(
			"Batched NDJSON under date-partitioned keys",
			`Canonical CloudEvents are gathered for up to a minute and written as NDJSON objects, one per provider, event type and day, named after the first event they hold. The partition is computed into metadata while each message is still one JSON document (a `+"`mapping`"+` that keeps the bytes as they are, where a `+"`mutation`"+` would re-serialize the JSON); the `+"`s3_`"+` metadata is kept off the objects.`,
			exampleNDJSON,
		).
		Example(
			"One object per event on a local S3-compatible server",
			`Each event is its own JSON object whose key comes from the event alone, so a retried write replaces the same object. The endpoint and static keys point at a local server such as versitygw or MinIO.`,
			exampleLocalServer,
		)
}

// The examples are constants so the tests can check that they build and that
// their mapping yields the keys the documentation promises.
const exampleNDJSON = `pipeline:
  processors:
    - mapping: |
        root = content() # the event's bytes, unchanged
        meta s3_partition = "provider=%s/type=%s/date=%s".format(
          @webhook_provider,
          this.type,
          this.time.ts_parse("2006-01-02T15:04:05Z07:00").ts_format("2006-01-02", "UTC")
        )
        meta s3_id = this.id

output:
  aws_s3:
    bucket: hookpipe-events
    region: eu-west-1
    path: '${! meta("s3_partition") }/${! meta("s3_id") }.ndjson'
    content_type: application/x-ndjson
    metadata:
      exclude_prefixes: [ s3_ ]
    tags:
      provider: '${! meta("webhook_provider") }'
    batching:
      count: 500
      period: 1m
      processors:
        - group_by_value:
            value: '${! meta("s3_partition") }'
        - archive:
            format: lines
`

const exampleLocalServer = `output:
  aws_s3:
    bucket: hookpipe-events
    endpoint: http://127.0.0.1:7070
    force_path_style_urls: true
    credentials:
      id: ${S3_ACCESS_KEY}
      secret: ${S3_SECRET_KEY}
    path: 'provider=${! meta("webhook_provider") }/type=${! json("type") }/date=${! json("time").ts_parse("2006-01-02T15:04:05Z07:00").ts_format("2006-01-02", "UTC") }/${! json("id") }.json'
    content_type: application/cloudevents+json
`

func cannedACLOptions() []string {
	opts := []string{""}
	for _, v := range types.ObjectCannedACL("").Values() {
		opts = append(opts, string(v))
	}
	return opts
}

func init() {
	service.MustRegisterBatchOutput("aws_s3", outputSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (out service.BatchOutput, policy service.BatchPolicy, maxInFlight int, err error) {
			if maxInFlight, err = conf.FieldMaxInFlight(); err != nil {
				return
			}
			if policy, err = conf.FieldBatchPolicy(fieldBatching); err != nil {
				return
			}
			out, err = newOutput(conf, mgr, maxInFlight)
			return
		})
}

type tag struct {
	key   string
	value *service.InterpolatedString
}

type output struct {
	bucket             string
	path               *service.InterpolatedString
	tags               []tag // sorted by key, so the tag header is stable
	contentType        *service.InterpolatedString
	contentEncoding    *service.InterpolatedString
	cacheControl       *service.InterpolatedString
	contentDisposition *service.InterpolatedString
	contentLanguage    *service.InterpolatedString
	websiteRedirect    *service.InterpolatedString
	metadata           *service.MetadataExcludeFilter
	storageClass       *service.InterpolatedString
	kmsKeyID           string
	sse                string
	checksum           string
	acl                string
	pathStyle          bool
	timeout            time.Duration

	endpoint string
	awsConf  aws.Config

	log    *service.Logger
	client atomic.Pointer[s3.Client]
	slots  chan struct{} // one per PUT in flight, across all batches

	removeProbe func()

	// Set while the server cannot be reached; see lost.
	mu          sync.Mutex
	unreachable bool
	reconnected bool
	strikes     int
	troubled    atomic.Bool
}

// reachTimeout bounds the check that the server answers, in Connect and in
// the readiness probe.
const reachTimeout = 10 * time.Second

// maxStrikes is how many times in a row a batch may find the server
// unreachable right after it answered a Connect before the batch is failed
// instead of held, so one batch whose PUTs always time out cannot wedge the
// output.
const maxStrikes = 3

func newOutput(conf *service.ParsedConfig, mgr *service.Resources, maxInFlight int) (*output, error) {
	o := &output{log: mgr.Logger(), slots: make(chan struct{}, max(maxInFlight, 1))}
	var err error
	if o.bucket, err = conf.FieldString(fieldBucket); err != nil {
		return nil, err
	}
	if o.bucket == "" {
		return nil, errors.New("bucket must not be empty")
	}
	if o.path, err = conf.FieldInterpolatedString(fieldPath); err != nil {
		return nil, err
	}
	tagMap, err := conf.FieldInterpolatedStringMap(fieldTags)
	if err != nil {
		return nil, err
	}
	for k, v := range tagMap {
		o.tags = append(o.tags, tag{key: k, value: v})
	}
	sort.Slice(o.tags, func(i, j int) bool { return o.tags[i].key < o.tags[j].key })

	for _, f := range []struct {
		name string
		dst  **service.InterpolatedString
	}{
		{fieldContentType, &o.contentType},
		{fieldContentEncoding, &o.contentEncoding},
		{fieldCacheControl, &o.cacheControl},
		{fieldContentDisposition, &o.contentDisposition},
		{fieldContentLanguage, &o.contentLanguage},
		{fieldWebsiteRedirectLocation, &o.websiteRedirect},
		{fieldStorageClass, &o.storageClass},
	} {
		if *f.dst, err = conf.FieldInterpolatedString(f.name); err != nil {
			return nil, err
		}
	}
	if o.metadata, err = conf.FieldMetadataExcludeFilter(fieldMetadata); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{fieldKMSKeyID, &o.kmsKeyID},
		{fieldServerSideEncryption, &o.sse},
		{fieldChecksumAlgorithm, &o.checksum},
		{fieldObjectCannedACL, &o.acl},
	} {
		if *f.dst, err = conf.FieldString(f.name); err != nil {
			return nil, err
		}
	}
	// The enum lint only warns; refuse an unknown ACL before any write.
	if !slices.Contains(cannedACLOptions(), o.acl) {
		return nil, fmt.Errorf("%s: unknown canned ACL %q", fieldObjectCannedACL, o.acl)
	}
	if o.pathStyle, err = conf.FieldBool(fieldForcePathStyleURLs); err != nil {
		return nil, err
	}
	if o.timeout, err = conf.FieldDuration(fieldTimeout); err != nil {
		return nil, err
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("%s must be positive", fieldTimeout)
	}

	sess, err := sessionFromParsed(conf)
	if err != nil {
		return nil, err
	}
	o.endpoint = sess.endpoint
	hc, err := sess.httpClient(maxInFlight)
	if err != nil {
		return nil, err
	}
	// Loading reads files and the environment only; no request is made, so a
	// server that is down at start-up does not stop the stream from starting.
	if o.awsConf, err = sess.awsConfig(context.Background(), hc); err != nil {
		return nil, err
	}
	o.removeProbe = health.For(mgr).Add(health.ComponentName("aws_s3", mgr), func(ctx context.Context) error {
		client := o.client.Load()
		if client == nil {
			return service.ErrNotConnected
		}
		return o.reach(ctx, client)
	})
	return o, nil
}

func (o *output) newClient() *s3.Client {
	return s3.NewFromConfig(o.awsConf, func(opts *s3.Options) {
		opts.UsePathStyle = o.pathStyle
		if o.endpoint != "" {
			opts.BaseEndpoint = aws.String(o.endpoint)
		}
	})
}

// ConnectionTest checks that the bucket exists and the credentials may reach it.
func (o *output) ConnectionTest(ctx context.Context) service.ConnectionTestResults {
	if _, err := o.newClient().HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(o.bucket)}); err != nil {
		return service.ConnectionTestFailed(fmt.Errorf("reaching bucket %s: %w", o.bucket, err)).AsList()
	}
	return service.ConnectionTestSucceeded().AsList()
}

// Connect builds the client and waits for the server to answer, so the
// output is reported connected only when it can write. Any HTTP answer will
// do: credentials that may put objects but not list the bucket get a 403,
// and the server was still reached.
func (o *output) Connect(ctx context.Context) error {
	client := o.client.Load()
	if client == nil {
		client = o.newClient()
		o.client.Store(client)
	}
	if err := o.reach(ctx, client); err != nil {
		return fmt.Errorf("reaching the S3 server for bucket %s: %w", o.bucket, err)
	}
	o.mu.Lock()
	if o.unreachable {
		o.unreachable, o.reconnected = false, true
		o.log.Infof("The S3 server for bucket %s answers again", o.bucket)
	}
	o.mu.Unlock()
	return nil
}

// reach returns nil when the server gives any HTTP answer to a HEAD of the
// bucket.
func (o *output) reach(ctx context.Context, client *s3.Client) error {
	ctx, cancel := context.WithTimeout(ctx, min(reachTimeout, o.timeout))
	defer cancel()
	_, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(o.bucket)})
	if err == nil || answered(err) {
		return nil
	}
	return err
}

// answered reports whether a failed request got an HTTP response. The SDK
// reports a request that was never answered (refused, reset, timed out) as
// a response error with status 0.
func answered(err error) bool {
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() > 0
}

// lost decides what a batch in which no PUT succeeded and one got no answer
// becomes: service.ErrNotConnected (wrapped), so the engine holds it and
// reconnects, unless it already found the server unreachable maxStrikes
// times in a row right after the server answered a Connect.
func (o *output) lost(err error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.troubled.Store(true)
	if o.reconnected {
		o.strikes++
	}
	o.reconnected = false
	if o.strikes >= maxStrikes {
		o.strikes = 0
		return fmt.Errorf("the server was unreachable %d times in a row for this batch, although it answers: %w", maxStrikes, err)
	}
	if !o.unreachable {
		o.unreachable = true
		o.log.Warnf("The S3 server for bucket %s cannot be reached; holding writes until it answers: %v", o.bucket, err)
	}
	return &unreachableError{err: err}
}

func (o *output) wrote() {
	if !o.troubled.Load() {
		return
	}
	o.mu.Lock()
	o.reconnected, o.strikes = false, 0
	o.troubled.Store(false)
	o.mu.Unlock()
}

// unreachableError is a write error meaning the server gave no answer;
// errors.Is(err, service.ErrNotConnected) holds.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string        { return "S3 server unreachable: " + e.err.Error() }
func (e *unreachableError) Unwrap() error        { return e.err }
func (e *unreachableError) Is(target error) bool { return target == service.ErrNotConnected }

func (o *output) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	client := o.client.Load()
	if client == nil {
		return service.ErrNotConnected
	}

	// Resolve every request first: it is cheap, fails only the message at
	// fault, and tells whether two messages share a key.
	ins := make([]*s3.PutObjectInput, len(batch))
	errs := make([]error, len(batch))
	keys := make(map[string]struct{}, len(batch))
	distinct := true
	for i := range batch {
		if ins[i], errs[i] = o.putInput(batch, i); errs[i] != nil {
			continue
		}
		if _, dup := keys[*ins[i].Key]; dup {
			distinct = false
		}
		keys[*ins[i].Key] = struct{}{}
	}

	// PUTs of distinct keys run concurrently, bounded by the output's slots.
	// Shared keys are written in batch order so the last message wins, as
	// it would downstream of any ordered consumer.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		halt error
	)
	stop := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if halt == nil {
			halt = fmt.Errorf("not attempted after an earlier failure in the batch: %w", err)
		}
	}
	for i, in := range ins {
		if in == nil {
			continue
		}
		select {
		case o.slots <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			stop(errs[i])
			continue
		}
		// Checked once the slot is ours, so a failure that freed it counts.
		mu.Lock()
		errs[i] = halt
		mu.Unlock()
		if errs[i] != nil {
			<-o.slots
			continue
		}
		write := func() {
			defer func() { <-o.slots }()
			if err := o.put(ctx, client, in); err != nil {
				errs[i] = err
				if !serverError(err) {
					return
				}
				stop(err)
			}
		}
		if distinct {
			wg.Go(write)
		} else {
			write()
		}
	}
	wg.Wait()

	if err := unanswered(ins, errs); err != nil && ctx.Err() == nil {
		return o.lost(err)
	}
	o.wrote()
	if len(batch) == 1 {
		return errs[0]
	}
	var batchErr *service.BatchError
	for i, err := range errs {
		if err == nil {
			continue
		}
		if batchErr == nil {
			batchErr = service.NewBatchError(batch, err)
		}
		batchErr.Failed(i, err)
	}
	if batchErr != nil {
		return batchErr
	}
	return nil
}

func (o *output) put(ctx context.Context, client *s3.Client, in *s3.PutObjectInput) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if _, err := client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("writing s3://%s/%s: %w", o.bucket, *in.Key, err)
	}
	return nil
}

// putInput builds the PutObject request for message i of batch.
func (o *output) putInput(batch service.MessageBatch, i int) (*s3.PutObjectInput, error) {
	raw, err := batch.TryInterpolatedString(i, o.path)
	if err != nil {
		return nil, fmt.Errorf("%s interpolation: %w", fieldPath, err)
	}
	key, changed := cleanKey(raw)
	if key == "" {
		return nil, fmt.Errorf("%s resolved to an empty object key (%q)", fieldPath, raw)
	}
	if changed {
		o.log.Warnf("Object key %q rewritten to %q to keep it inside its prefix", raw, key)
	}

	body, err := jsonwrite.Content(batch[i])
	if err != nil {
		return nil, err
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(o.bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		Metadata:      objectMetadata(o.metadata, batch[i]),
	}

	for _, f := range []struct {
		name string
		src  *service.InterpolatedString
		dst  **string
	}{
		{fieldContentType, o.contentType, &in.ContentType},
		{fieldContentEncoding, o.contentEncoding, &in.ContentEncoding},
		{fieldCacheControl, o.cacheControl, &in.CacheControl},
		{fieldContentDisposition, o.contentDisposition, &in.ContentDisposition},
		{fieldContentLanguage, o.contentLanguage, &in.ContentLanguage},
		{fieldWebsiteRedirectLocation, o.websiteRedirect, &in.WebsiteRedirectLocation},
	} {
		v, err := batch.TryInterpolatedString(i, f.src)
		if err != nil {
			return nil, fmt.Errorf("%s interpolation: %w", f.name, err)
		}
		if v != "" {
			*f.dst = aws.String(v)
		}
	}
	sc, err := batch.TryInterpolatedString(i, o.storageClass)
	if err != nil {
		return nil, fmt.Errorf("%s interpolation: %w", fieldStorageClass, err)
	}
	in.StorageClass = types.StorageClass(sc)

	if len(o.tags) > 0 {
		var sb strings.Builder
		for j, t := range o.tags {
			v, err := batch.TryInterpolatedString(i, t.value)
			if err != nil {
				return nil, fmt.Errorf("tag %s interpolation: %w", t.key, err)
			}
			if j > 0 {
				sb.WriteByte('&')
			}
			sb.WriteString(url.QueryEscape(t.key))
			sb.WriteByte('=')
			sb.WriteString(url.QueryEscape(v))
		}
		in.Tagging = aws.String(sb.String())
	}

	if o.kmsKeyID != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(o.kmsKeyID)
	}
	if o.sse != "" {
		in.ServerSideEncryption = types.ServerSideEncryption(o.sse)
	}
	in.ChecksumAlgorithm = types.ChecksumAlgorithm(o.checksum)
	in.ACL = types.ObjectCannedACL(o.acl)
	return in, nil
}

func (o *output) Close(context.Context) error {
	o.removeProbe()
	o.client.Store(nil)
	return nil
}

// unanswered returns the error of a PUT that got no HTTP answer when no PUT
// of the batch succeeded, else nil.
func unanswered(ins []*s3.PutObjectInput, errs []error) error {
	var first error
	for i, in := range ins {
		if in == nil {
			continue
		}
		if errs[i] == nil {
			return nil
		}
		if first == nil && !answered(errs[i]) {
			first = errs[i]
		}
	}
	return first
}

// cleanKey removes leading slashes from a resolved path and escapes every
// segment that is exactly "." or "..", treating both "/" and "\" as
// separators. It reports whether anything changed; keys that need no change,
// the common case, are returned without allocating.
func cleanKey(p string) (string, bool) {
	trimmed := strings.TrimLeft(p, "/")
	if !hasDotSegment(trimmed) {
		return trimmed, trimmed != p
	}
	var sb strings.Builder
	sb.Grow(len(trimmed) + 8)
	start := 0
	for i := 0; i <= len(trimmed); i++ {
		if i < len(trimmed) && trimmed[i] != '/' && trimmed[i] != '\\' {
			continue
		}
		switch seg := trimmed[start:i]; seg {
		case ".":
			sb.WriteString("%2E")
		case "..":
			sb.WriteString("%2E%2E")
		default:
			sb.WriteString(seg)
		}
		if i < len(trimmed) {
			sb.WriteByte(trimmed[i])
		}
		start = i + 1
	}
	return sb.String(), true
}

func hasDotSegment(p string) bool {
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' && p[i] != '\\' {
			continue
		}
		if seg := p[start:i]; seg == "." || seg == ".." {
			return true
		}
		start = i + 1
	}
	return false
}

// objectMetadata returns the message metadata that passes the filter, as S3
// user metadata. Keys that cannot be HTTP header names are dropped, since no
// server would accept them and the message would fail forever; values outside
// printable ASCII are RFC 2047 encoded as S3 expects.
func objectMetadata(filter *service.MetadataExcludeFilter, m *service.Message) map[string]string {
	md := map[string]string{}
	_ = filter.Walk(m, func(k, v string) error {
		if !isToken(k) {
			return nil
		}
		md[k] = mime.QEncoding.Encode("UTF-8", v)
		return nil
	})
	if len(md) == 0 {
		return nil
	}
	return md
}

// isToken reports whether s is a valid HTTP header field name (RFC 9110 token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// serverError reports whether a failed PUT says something about the server
// or the account rather than about the message: no HTTP answer at all
// (refused, reset, timed out), a 5xx, throttling, denied access, a missing
// bucket, a redirect elsewhere. Such a failure would repeat for the rest of
// the batch.
func serverError(err error) bool {
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) {
		return true
	}
	switch code := re.HTTPStatusCode(); {
	case code >= 500, code < 400, code == 401, code == 403, code == 404, code == 408, code == 429:
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "RequestTimeout", "ExpiredToken", "TokenRefreshRequired", "AuthorizationHeaderMalformed",
			"RequestTimeTooSkewed", "InvalidAccessKeyId", "SignatureDoesNotMatch", "SlowDown":
			return true
		}
	}
	return false
}
