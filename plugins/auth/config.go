package auth

import (
	"errors"

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
	anonymous, err := conf.FieldBool(fieldAllowAnonymous)
	if err != nil {
		return nil, false, err
	}
	if len(all) == 0 && !anonymous {
		return nil, false, errors.New("auth: no check is configured (basic, token or city_signature); set allow_unauthenticated: true to accept anonymous deliveries")
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
