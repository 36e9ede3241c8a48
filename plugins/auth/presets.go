package auth

import (
	"fmt"
	"strings"
)

// Signature presets: the published schemes of common senders, as
// configurations of the declarative Signature check.
const (
	// PresetStandardWebhooks is the Standard Webhooks specification
	// (standardwebhooks.com), also what Svix sends: webhook-id,
	// webhook-timestamp and webhook-signature headers, "v1,<base64>"
	// HMAC-SHA256 or "v1a,<base64>" ed25519 signatures over
	// "<id>.<timestamp>.<body>", base64 secrets written "whsec_..." (public
	// keys "whpk_...").
	PresetStandardWebhooks = "standard_webhooks"
	// PresetGitHub is GitHub's X-Hub-Signature-256: "sha256=<hex>" of the
	// HMAC-SHA256 of the body under the webhook secret as typed. GitHub signs
	// no timestamp; X-GitHub-Delivery names the delivery.
	PresetGitHub = "github"
	// PresetStripe is Stripe's Stripe-Signature: "t=<unix>,v1=<hex>[,v1=<hex>]"
	// where each v1 is the HMAC-SHA256 of "<t>.<body>" under the endpoint's
	// signing secret, used as written ("whsec_..." is not decoded).
	PresetStripe = "stripe"
)

// Presets lists the preset names a config accepts ("" is none).
var Presets = []string{PresetStandardWebhooks, PresetGitHub, PresetStripe}

// ApplyPreset fills the fields c leaves empty with the preset's values;
// fields c sets are kept, so a preset can be adjusted (another header name,
// a wider tolerance). An empty preset changes nothing.
func ApplyPreset(preset string, c SignatureConfig) (SignatureConfig, error) {
	fill := func(field *string, v string) {
		if *field == "" {
			*field = v
		}
	}
	switch preset {
	case "":
	case PresetStandardWebhooks:
		// The algorithm follows the key type: whpk_ keys are ed25519 public
		// keys (v1a), anything else an HMAC secret (v1).
		alg := AlgHMACSHA256
		for _, s := range c.Secrets {
			if s != "" {
				if strings.HasPrefix(s, "whpk_") {
					alg = AlgEd25519
				}
				break
			}
		}
		fill(&c.Algorithm, alg)
		fill(&c.Header, "webhook-signature")
		fill(&c.Format, FormatCommaList)
		fill(&c.Encoding, "base64")
		fill(&c.SecretEncoding, SecretBase64)
		fill(&c.TimestampHeader, "webhook-timestamp")
		fill(&c.IDHeader, "webhook-id")
		fill(&c.SignedPayload, "{header:webhook-id}.{header:webhook-timestamp}.{body}")
	case PresetGitHub:
		fill(&c.Header, "X-Hub-Signature-256")
		fill(&c.Format, FormatPlain)
		fill(&c.Prefix, "sha256=")
		fill(&c.Algorithm, AlgHMACSHA256)
		fill(&c.Encoding, "hex")
		fill(&c.SecretEncoding, SecretRaw)
		fill(&c.IDHeader, "X-GitHub-Delivery")
		fill(&c.SignedPayload, "{body}")
	case PresetStripe:
		fill(&c.Header, "Stripe-Signature")
		fill(&c.Format, FormatKeyValue)
		fill(&c.TimestampKey, "t")
		fill(&c.Version, "v1")
		fill(&c.Algorithm, AlgHMACSHA256)
		fill(&c.Encoding, "hex")
		fill(&c.SecretEncoding, SecretRaw)
		fill(&c.SignedPayload, "{t}.{body}")
	default:
		return c, fmt.Errorf("signature: unknown preset %q (want %s, %s or %s)", preset, PresetStandardWebhooks, PresetGitHub, PresetStripe)
	}
	return c, nil
}
