//go:build integration

// Package guarantees proves hookpipe's delivery promise under faults: a 200
// means stored, everything else is retried by the provider, duplicates
// collapse to one, and shutdown answers every request truthfully.
package guarantees

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/hookpipe/hookpipe/plugins/event"
	"github.com/hookpipe/hookpipe/plugins/examples"
	"github.com/hookpipe/hookpipe/tests/harness"
)

const (
	csPassword = "guarantees-cs-password"
	citySecret = "guarantees-city-secret"
)

var providerEnv = []string{"CONTROLSHIFT_PASSWORD=" + csPassword, "THECITY_SECRET=" + citySecret}

// distinctDeliveries makes n distinct events, half ControlShift signatures
// (each with its own jid) and half City user updates (each with its own
// webhook_id), with the event id hookpipe must store each under.
func distinctDeliveries(t testing.TB, n int) []harness.Delivery {
	t.Helper()
	sig, ok := examples.Get(examples.ControlShift, "signature.created")
	if !ok {
		t.Fatal("no signature.created example")
	}
	user, ok := examples.Get(examples.TheCity, "users_update")
	if !ok {
		t.Fatal("no users_update example")
	}
	const jid = `"jid": "1ebf2eb10c3d8939f42dff68"`
	if !bytes.Contains(sig.Body, []byte(jid)) {
		t.Fatal("the signature example changed: no jid to rewrite")
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("controlshift:"+csPassword))
	out := make([]harness.Delivery, n)
	for i := range out {
		if i%2 == 0 {
			j := fmt.Sprintf("guarantee-%08d", i)
			out[i] = harness.Delivery{
				Path:    "/webhooks/controlshift",
				Body:    bytes.Replace(sig.Body, []byte(jid), []byte(`"jid": "`+j+`"`), 1),
				Header:  map[string]string{"Authorization": basic},
				EventID: event.HashID("controlshift", "signature.created", j),
			}
			continue
		}
		w := fmt.Sprintf("guarantee-%08d", i)
		out[i] = harness.Delivery{
			Path:    "/webhooks/thecity",
			Body:    []byte(strings.Replace(string(user.Body), "{", `{ "webhook_id":"`+w+`",`, 1)),
			Header:  map[string]string{"X-City-Webhook-Signature": citySecret},
			EventID: w,
		}
	}
	return out
}
