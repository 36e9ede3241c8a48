// Package examples holds the example payloads that ControlShift Labs and The City publish in
// their webhook documentation, embedded byte for byte, so the binary can send them to a
// running pipeline and tests can feed them through the processors.
//
// Files live in controlshift/<type>.json and thecity/<object>_<event>[_<variant>].json.
// Each holds exactly the example's text from its opening { to its closing }, with no trailing
// newline, because signatures are computed over raw bytes. Some City examples are not strict
// JSON (nil, trailing commas, a missing comma): they are kept that way on purpose, since that
// is what the provider documents. The .gitattributes file beside them stops line-ending
// conversion on checkout.
//
// To regenerate the files from the provider documents after they change:
//
//	HOOKPIPE_SEEDS_DIR=/path/to/seeds go test ./plugins/examples -run TestExamplesMatchSeedDocuments -update
package examples

import (
	"embed"
	"path"
	"slices"
	"strings"
	"sync"
)

// Provider names, as used in Example.Provider and as directory names.
const (
	ControlShift = "controlshift"
	TheCity      = "thecity"
)

//go:embed controlshift/*.json thecity/*.json
var files embed.FS

// Example is one documented webhook payload.
type Example struct {
	// Provider is ControlShift or TheCity.
	Provider string
	// Name is the file name without ".json", e.g. "petition.launched" or "addresses_create_user".
	Name string
	// Section is the heading the example appears under in the provider's documentation, e.g.
	// "petition.launched" or "Addresses#create".
	Section string
	// Body is the payload exactly as documented.
	Body []byte
}

// All returns every example, ControlShift's first, each provider's sorted by name. The bodies
// are copies, free for the caller to modify.
func All() []Example {
	return cloneAll(loaded())
}

// Provider returns the examples of one provider, sorted by name, or nil for an unknown name.
func Provider(name string) []Example {
	var out []Example
	for _, e := range loaded() {
		if e.Provider == name {
			out = append(out, e)
		}
	}
	return cloneAll(out)
}

// Get returns one example by provider and name.
func Get(provider, name string) (Example, bool) {
	for _, e := range loaded() {
		if e.Provider == provider && e.Name == name {
			e.Body = slices.Clone(e.Body)
			return e, true
		}
	}
	return Example{}, false
}

func cloneAll(in []Example) []Example {
	if in == nil {
		return nil
	}
	out := make([]Example, len(in))
	for i, e := range in {
		e.Body = slices.Clone(e.Body)
		out[i] = e
	}
	return out
}

var loaded = sync.OnceValue(func() []Example {
	var all []Example
	for _, provider := range []string{ControlShift, TheCity} {
		entries, err := files.ReadDir(provider)
		if err != nil {
			panic(err) // the embed pattern guarantees the directory
		}
		start := len(all)
		for _, ent := range entries {
			body, err := files.ReadFile(path.Join(provider, ent.Name()))
			if err != nil {
				panic(err)
			}
			name := strings.TrimSuffix(ent.Name(), ".json")
			section := name
			if provider == TheCity {
				section = citySection(name)
			}
			all = append(all, Example{Provider: provider, Name: name, Section: section, Body: body})
		}
		// By name, not file name: "petition.launched" sorts before "petition.launched.ham".
		slices.SortFunc(all[start:], func(a, b Example) int { return strings.Compare(a.Name, b.Name) })
	}
	return all
})

// cityObjects maps the lowercase file-name prefix to the object as The City's section titles
// spell it.
var cityObjects = map[string]string{
	"addresses":   "Addresses",
	"checkins":    "Checkins",
	"duplicates":  "Duplicates",
	"groups":      "Groups",
	"grouptags":   "GroupTags",
	"invitations": "Invitations",
	"privileges":  "Privileges",
	"roles":       "Roles",
	"users":       "Users",
}

// cityEvents lists the events of the documented sections; check_out holds an underscore, so
// the event cannot be told from a variant by splitting the file name alone.
var cityEvents = []string{"check_out", "create", "destroy", "expire", "merge", "update"}

// citySection turns "addresses_create_group" into "Addresses#create", or "" when the name
// does not follow the layout.
func citySection(name string) string {
	obj, rest, ok := strings.Cut(name, "_")
	title := cityObjects[obj]
	if !ok || title == "" {
		return ""
	}
	for _, ev := range cityEvents {
		if rest == ev || strings.HasPrefix(rest, ev+"_") {
			return title + "#" + ev
		}
	}
	return ""
}
