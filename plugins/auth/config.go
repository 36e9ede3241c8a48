package auth

import (
	"errors"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Config field names, shared by the webhook input and the provider
// processors so an endpoint and its replay are configured alike.
const (
	fieldBasic            = "basic"
	fieldBasicUsername    = "username"
	fieldBasicPasswords   = "passwords"
	fieldToken            = "token"
	fieldTokenIn          = "in"
	fieldTokenName        = "name"
	fieldSecrets          = "secrets"
	fieldCity             = "city_signature"
	fieldCityHeader       = "header"
	fieldCityMode         = "mode"
	fieldCityEncoding     = "encoding"
	fieldAllowAnonymous   = "allow_unauthenticated"
	fieldSignature        = "signature"
	fieldSigPreset        = "preset"
	fieldSigHeader        = "header"
	fieldSigFormat        = "format"
	fieldSigPrefix        = "prefix"
	fieldSigVersion       = "version"
	fieldSigAlgorithm     = "algorithm"
	fieldSigEncoding      = "encoding"
	fieldSigPayload       = "signed_payload"
	fieldSigSecretEnc     = "secret_encoding"
	fieldSigTSHeader      = "timestamp_header"
	fieldSigTSKey         = "timestamp_key"
	fieldSigTolerance     = "tolerance"
	fieldSigIDHeader      = "id_header"
	fieldCityDescription  = "Checks The City's `X-City-Webhook-Signature` header. In `shared` mode the header must equal one of the secrets (the value shown at Admin > API > Webhooks); in `hmac_sha256` / `hmac_sha1` mode it must be the HMAC of the raw body keyed with one of the secrets, hex or base64 encoded (an optional `sha256=` prefix is accepted)."
	fieldTokenDescription = "Checks a secret token carried in the query string (`in: query`, e.g. `?token=...`), in the path segment after the endpoint's path (`in: path`, e.g. `/webhooks/controlshift/<token>`) or in a header (`in: header`)."
)

// SecretsField is a list of active secrets. Two entries let a secret be
// rotated: add the new one, move the provider over, remove the old one.
func SecretsField() *service.ConfigField {
	return service.NewStringListField(fieldSecrets).
		Description("Active secrets, normally filled from environment variables. Any one of them is accepted, so a secret can be rotated by listing the new and the old one for a while. Empty entries (an unset `${VAR:}`) are ignored.").
		Secret()
}

// CitySignatureFields are the fields of a City signature check.
func CitySignatureFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringField(fieldCityHeader).Description("The header that carries the signature.").Default(DefaultCitySignatureHeader).Advanced(),
		service.NewStringEnumField(fieldCityMode, ModeShared, ModeHMACSHA256, ModeHMACSHA1).Description("How the header is checked.").Default(ModeShared),
		service.NewStringEnumField(fieldCityEncoding, "hex", "base64").Description("How an HMAC signature is encoded (HMAC modes only).").Default("hex"),
		SecretsField(),
	}
}

// ConfigField is the `auth` object of an endpoint.
func ConfigField(name string) *service.ConfigField {
	return service.NewObjectField(name,
		service.NewObjectField(fieldBasic,
			service.NewStringField(fieldBasicUsername).Description("The expected user name.").Optional(),
			service.NewStringListField(fieldBasicPasswords).Description("Active passwords; any one is accepted (rotation). Empty entries are ignored.").Secret(),
		).Description("Requires HTTP basic auth, e.g. a ControlShift endpoint URL of the form `https://user:password@host/webhooks/controlshift`.").Optional(),
		service.NewObjectField(fieldToken,
			service.NewStringEnumField(fieldTokenIn, TokenInQuery, TokenInPath, TokenInHeader).Description("Where the token is carried.").Default(TokenInQuery),
			service.NewStringField(fieldTokenName).Description("The query parameter or header name (ignored for `in: path`).").Default("token"),
			SecretsField(),
		).Description(fieldTokenDescription).Optional(),
		service.NewObjectField(fieldCity, CitySignatureFields()...).Description(fieldCityDescription).Optional(),
		service.NewObjectField(fieldSignature, SignatureFields()...).Description(fieldSignatureDescription).Optional(),
		service.NewBoolField(fieldAllowAnonymous).Description("Accept deliveries with no authentication at all. Only for local experiments: an endpoint with no check configured is refused unless this is true.").Default(false).Advanced(),
	).Description("How deliveries to this endpoint are authenticated, on the raw request before anything else. When several checks are configured, all must pass. Failures answer 401 with no detail.")
}

// FromConfig builds the verifier of an `auth` object. The second result
// tells whether the token is carried in the path, which changes how the
// endpoint is routed.
func FromConfig(conf *service.ParsedConfig) (Verifier, bool, error) {
	var all All
	tokenInPath := false
	if configured(conf, fieldBasic, fieldBasicPasswords) || conf.Contains(fieldBasic, fieldBasicUsername) {
		b := conf.Namespace(fieldBasic)
		user, err := b.FieldString(fieldBasicUsername)
		if err != nil {
			return nil, false, err
		}
		pw, err := b.FieldStringList(fieldBasicPasswords)
		if err != nil {
			return nil, false, err
		}
		v, err := NewBasic(user, pw)
		if err != nil {
			return nil, false, err
		}
		all = append(all, v)
	}
	if configured(conf, fieldToken, fieldSecrets) {
		t := conf.Namespace(fieldToken)
		in, err := t.FieldString(fieldTokenIn)
		if err != nil {
			return nil, false, err
		}
		name, err := t.FieldString(fieldTokenName)
		if err != nil {
			return nil, false, err
		}
		secrets, err := t.FieldStringList(fieldSecrets)
		if err != nil {
			return nil, false, err
		}
		v, err := NewToken(in, name, secrets)
		if err != nil {
			return nil, false, err
		}
		tokenInPath = in == TokenInPath
		all = append(all, v)
	}
	if Configured(conf.Namespace(fieldCity)) {
		v, err := CitySignatureFromConfig(conf.Namespace(fieldCity))
		if err != nil {
			return nil, false, err
		}
		all = append(all, v)
	}
	if configured(conf, fieldSignature, fieldSecrets) {
		v, err := SignatureFromConfig(conf.Namespace(fieldSignature))
		if err != nil {
			return nil, false, err
		}
		all = append(all, v)
	}
	anonymous, err := conf.FieldBool(fieldAllowAnonymous)
	if err != nil {
		return nil, false, err
	}
	if len(all) == 0 && !anonymous {
		return nil, false, errors.New("auth: no check is configured (basic, token, city_signature or signature); set allow_unauthenticated: true to accept anonymous deliveries")
	}
	return all, tokenInPath, nil
}

// Configured reports whether a check's secrets list was written in the
// config. The engine fills an absent optional object with its defaults and
// an empty list, while a list of unset variables such as [ "${X:}" ] keeps
// its (empty) entries, so this tells "not configured" from "configured with
// missing secrets", which must fail.
func Configured(conf *service.ParsedConfig) bool {
	return configured(conf, fieldSecrets)
}

func configured(conf *service.ParsedConfig, path ...string) bool {
	l, err := conf.FieldStringList(path...)
	return err == nil && len(l) > 0
}

// CitySignatureFromConfig builds a City signature check from the fields of
// CitySignatureFields.
func CitySignatureFromConfig(c *service.ParsedConfig) (*CitySignature, error) {
	header, err := c.FieldString(fieldCityHeader)
	if err != nil {
		return nil, err
	}
	mode, err := c.FieldString(fieldCityMode)
	if err != nil {
		return nil, err
	}
	enc, err := c.FieldString(fieldCityEncoding)
	if err != nil {
		return nil, err
	}
	secrets, err := c.FieldStringList(fieldSecrets)
	if err != nil {
		return nil, err
	}
	return NewCitySignature(header, mode, enc, secrets)
}

const fieldSignatureDescription = `Checks a signature header against the raw body, declaratively: which header, how it is laid out, ` +
	"what was signed, the algorithm, the keys, and how fresh a signed timestamp must be. A `preset` fills every field for a " +
	"published scheme (`standard_webhooks`, `github`, `stripe`); fields set next to it override the preset's. Signatures are " +
	"compared in constant time against every active secret; a signed timestamp older than `tolerance` or more than `tolerance` " +
	"in the future is refused (replay protection). A missing header answers 401 like a wrong signature."

// SignatureFields are the fields of a declarative signature check.
func SignatureFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringAnnotatedEnumField(fieldSigPreset, map[string]string{
			"":                     "No preset: every field as written.",
			PresetStandardWebhooks: "Standard Webhooks (and Svix): `webhook-signature: v1,<base64>` (HMAC-SHA256) or `v1a,<base64>` (ed25519, when the keys are `whpk_...`) over `{header:webhook-id}.{header:webhook-timestamp}.{body}`; `whsec_` secrets base64-decoded; `webhook-timestamp` within `tolerance`; `webhook-id` required.",
			PresetGitHub:           "GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the body under the secret as typed; `X-GitHub-Delivery` required. GitHub signs no timestamp, so there is no replay window: deduplicate on the delivery id.",
			PresetStripe:           "Stripe: `Stripe-Signature: t=<unix>,v1=<hex>`, HMAC-SHA256 of `{t}.{body}` under the signing secret as written (its `whsec_` is part of the key); `t` within `tolerance`; several `v1` accepted.",
		}).Description("A published scheme that fills the fields left empty.").Default(""),
		service.NewStringField(fieldSigHeader).Description("The header carrying the signature.").Example("X-Signature").Default(""),
		service.NewStringAnnotatedEnumField(fieldSigFormat, map[string]string{
			"":              "The preset's, else `plain`.",
			FormatPlain:     "The header is one signature, after `prefix`.",
			FormatCommaList: "Space-separated `<version>,<signature>` items; those labelled `version` are tried (Standard Webhooks).",
			FormatKeyValue:  "Comma-separated `<key>=<value>` pairs: the timestamp under `timestamp_key` and signatures under `version`, possibly several (Stripe).",
		}).Description("How the header is laid out.").Default(""),
		service.NewStringField(fieldSigPrefix).Description("Text each signature must start with, removed before decoding, e.g. `sha256=`.").Default(""),
		service.NewStringField(fieldSigVersion).Description("The label of the signatures to check in `comma_list` (default `v1`, or `v1a` for ed25519) and `key_value` (default `v1`) headers; other labels are ignored.").Default("").Advanced(),
		service.NewStringAnnotatedEnumField(fieldSigAlgorithm, map[string]string{
			"":            "The preset's, else `hmac_sha256`.",
			AlgHMACSHA1:   "HMAC-SHA1.",
			AlgHMACSHA256: "HMAC-SHA256.",
			AlgHMACSHA512: "HMAC-SHA512.",
			AlgEd25519:    "ed25519 signatures; `secrets` are the sender's public keys.",
		}).Description("The signature algorithm.").Default(""),
		service.NewStringAnnotatedEnumField(fieldSigEncoding, map[string]string{
			"":       "The preset's, else `hex`.",
			"hex":    "Hexadecimal, either case.",
			"base64": "Base64, standard or URL alphabet, padded or not.",
		}).Description("How a signature is encoded in the header.").Default(""),
		service.NewStringField(fieldSigPayload).Description("What was signed: literal text with `{body}` (the raw body, exactly once), `{header:<name>}` (a header's value) and `{timestamp}` (or `{t}`: the timestamp from `timestamp_header` or `timestamp_key`). Default `{body}`.").Examples("{body}", "{header:webhook-id}.{header:webhook-timestamp}.{body}", "{t}.{body}").Default(""),
		service.NewStringAnnotatedEnumField(fieldSigSecretEnc, map[string]string{
			"":           "The preset's, else `raw`.",
			SecretRaw:    "The secret's bytes as written.",
			SecretBase64: "Base64-decoded, after removing a `whsec_` or `whpk_` prefix.",
		}).Description("How a secret in `secrets` becomes the key.").Default("").Advanced(),
		service.NewStringField(fieldSigTSHeader).Description("A header holding the signed Unix time in seconds. It must be part of `signed_payload`, or it would protect nothing.").Default(""),
		service.NewStringField(fieldSigTSKey).Description("For `key_value` headers: the key holding the signed Unix time (default `t` when `signed_payload` uses `{timestamp}` and no `timestamp_header` is set).").Default("").Advanced(),
		service.NewDurationField(fieldSigTolerance).Description("How far the signed timestamp may be from this host's clock, in the past or the future.").Default("5m"),
		service.NewStringField(fieldSigIDHeader).Description("A header every delivery must carry: the sender's delivery id. To make it the event id, list it in the input's `metadata_headers` and read it in the processor, e.g. `id: ${! meta(\"webhook-id\") }`.").Default(""),
		service.NewStringListField(fieldSecrets).
			Description("Active secrets (ed25519: the sender's public keys), normally from environment variables. Any one of them is accepted, so a secret can be rotated by listing the new and the old one for a while. Empty entries (an unset `${VAR:}`) are ignored.").
			Secret(),
	}
}

// SignatureFromConfig builds a signature check from the fields of
// SignatureFields, with its preset applied.
func SignatureFromConfig(c *service.ParsedConfig) (*Signature, error) {
	var sc SignatureConfig
	var preset string
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{fieldSigPreset, &preset},
		{fieldSigHeader, &sc.Header},
		{fieldSigFormat, &sc.Format},
		{fieldSigPrefix, &sc.Prefix},
		{fieldSigVersion, &sc.Version},
		{fieldSigAlgorithm, &sc.Algorithm},
		{fieldSigEncoding, &sc.Encoding},
		{fieldSigPayload, &sc.SignedPayload},
		{fieldSigSecretEnc, &sc.SecretEncoding},
		{fieldSigTSHeader, &sc.TimestampHeader},
		{fieldSigTSKey, &sc.TimestampKey},
		{fieldSigIDHeader, &sc.IDHeader},
	} {
		v, err := c.FieldString(f.name)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	var err error
	if sc.Tolerance, err = c.FieldDuration(fieldSigTolerance); err != nil {
		return nil, err
	}
	// NewSignature reads zero as "the default"; written in a config it is a
	// mistake that would otherwise widen the window silently.
	if sc.Tolerance < time.Second {
		return nil, errors.New("signature: tolerance must be at least 1s")
	}
	if sc.Secrets, err = c.FieldStringList(fieldSecrets); err != nil {
		return nil, err
	}
	if sc, err = ApplyPreset(preset, sc); err != nil {
		return nil, err
	}
	return NewSignature(sc)
}
