package examples

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hookpipe/hookpipe/plugins/jsonread"
)

var update = flag.Bool("update", false, "rewrite the embedded example files from the provider documents")

const (
	controlShiftDoc = "controlshift-webhooks.md"
	theCityDoc      = "thecity-webhooks.txt"
)

// seedsDir finds the provider documents: $HOOKPIPE_SEEDS_DIR, else the shared seeds directory
// beside the repository. A clone without them skips; an explicitly named directory that lacks
// them fails.
func seedsDir(t *testing.T) string {
	t.Helper()
	dir, explicit := os.LookupEnv("HOOKPIPE_SEEDS_DIR")
	if !explicit {
		dir = filepath.Join("..", "..", "..", "shared", "seeds")
	}
	for _, name := range []string{controlShiftDoc, theCityDoc} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			if explicit || *update {
				t.Fatalf("provider document missing: %v", err)
			}
			t.Skipf("provider documents not found in %s (set HOOKPIPE_SEEDS_DIR to check the embedded examples against them): %v", dir, err)
		}
	}
	return dir
}

type extracted struct {
	provider, name, section string
	body                    []byte
}

// extractControlShift returns the content of every ```json block, trimmed of surrounding blank
// lines, named by the "## " heading it sits under.
func extractControlShift(t *testing.T, doc []byte) []extracted {
	t.Helper()
	var (
		out     []extracted
		heading string
		block   [][]byte
		inBlock bool
	)
	for i, line := range bytes.Split(doc, []byte("\n")) {
		switch {
		case inBlock && string(line) == "```":
			inBlock = false
			for len(block) > 0 && len(bytes.TrimSpace(block[0])) == 0 {
				block = block[1:]
			}
			for len(block) > 0 && len(bytes.TrimSpace(block[len(block)-1])) == 0 {
				block = block[:len(block)-1]
			}
			if heading == "" {
				t.Fatalf("%s line %d: json block outside a section", controlShiftDoc, i+1)
			}
			out = append(out, extracted{ControlShift, heading, heading, bytes.Join(block, []byte("\n"))})
			heading = "" // a second block in the same section is an error
		case inBlock:
			block = append(block, line)
		case string(line) == "```json":
			inBlock, block = true, nil
		case bytes.HasPrefix(line, []byte("## ")):
			heading = string(bytes.TrimSpace(line[3:]))
		}
	}
	if inBlock {
		t.Fatalf("%s: unterminated json block", controlShiftDoc)
	}
	return out
}

var (
	citySectionLine = regexp.MustCompile(`^([A-Z][A-Za-z]*)#([a-z_]+)$`)
	cityVariant     = regexp.MustCompile(`^[A-Z][a-z]* that belongs to a ([a-z]+):$`)
)

// extractTheCity returns every example found on the first non-blank line after a section's
// "Post Data" line: one or more top-level {...} spans, each optionally preceded by a label
// such as "Address that belongs to a group:".
func extractTheCity(t *testing.T, doc []byte) (examples []extracted, sections []string) {
	t.Helper()
	var section, object, event string
	lines := strings.Split(string(doc), "\n")
	for i := 0; i < len(lines); i++ {
		if m := citySectionLine.FindStringSubmatch(lines[i]); m != nil {
			section, object, event = m[0], m[1], m[2]
			sections = append(sections, section)
			continue
		}
		if lines[i] != "Post Data" {
			continue
		}
		if section == "" {
			t.Fatalf("%s line %d: Post Data outside a section", theCityDoc, i+1)
		}
		i++
		for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
			i++
		}
		if i == len(lines) {
			t.Fatalf("%s: %s has no example", theCityDoc, section)
		}
		spans, labels := braceSpans(t, lines[i])
		if len(spans) == 0 {
			t.Fatalf("%s line %d: no example in %q", theCityDoc, i+1, lines[i])
		}
		for k, span := range spans {
			name := strings.ToLower(object) + "_" + event
			if labels[k] != "" {
				m := cityVariant.FindStringSubmatch(labels[k])
				if m == nil {
					t.Fatalf("%s line %d: unrecognised example label %q", theCityDoc, i+1, labels[k])
				}
				name += "_" + m[1]
			}
			examples = append(examples, extracted{TheCity, name, section, []byte(span)})
		}
		section = ""
	}
	return examples, sections
}

// braceSpans splits a line into its top-level {...} spans (braces inside strings do not
// count) and the trimmed text before each.
func braceSpans(t *testing.T, line string) (spans, labels []string) {
	t.Helper()
	depth, start, last := 0, 0, 0
	inString, escaped := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == '{':
			if depth == 0 {
				start = i
			}
			depth++
		case c == '}':
			depth--
			if depth < 0 {
				t.Fatalf("unbalanced braces in %q", line)
			}
			if depth == 0 {
				labels = append(labels, strings.TrimSpace(line[last:start]))
				spans = append(spans, line[start:i+1])
				last = i + 1
			}
		}
	}
	if depth != 0 || inString || strings.TrimSpace(line[last:]) != "" {
		t.Fatalf("unbalanced braces or trailing text in %q", line)
	}
	return spans, labels
}

func TestExamplesMatchSeedDocuments(t *testing.T) {
	dir := seedsDir(t)
	csDoc, err := os.ReadFile(filepath.Join(dir, controlShiftDoc))
	if err != nil {
		t.Fatal(err)
	}
	cityDoc, err := os.ReadFile(filepath.Join(dir, theCityDoc))
	if err != nil {
		t.Fatal(err)
	}
	cs := extractControlShift(t, csDoc)
	city, citySections := extractTheCity(t, cityDoc)
	if len(cs) != 22 {
		t.Errorf("%s: extracted %d examples, want 22", controlShiftDoc, len(cs))
	}
	if len(city) != 23 || len(citySections) != 21 {
		t.Errorf("%s: extracted %d examples from %d sections, want 23 from 21", theCityDoc, len(city), len(citySections))
	}
	want := append(cs, city...)

	if *update {
		writeExamples(t, want)
		t.Log("example files rewritten; rebuild to embed them")
		return
	}

	got := All()
	seen := map[string]bool{}
	for _, w := range want {
		key := w.provider + "/" + w.name
		if seen[key] {
			t.Errorf("two examples extracted as %s", key)
		}
		seen[key] = true
		e, ok := Get(w.provider, w.name)
		if !ok {
			t.Errorf("%s (%s) is documented but not embedded", key, w.section)
			continue
		}
		if e.Section != w.section {
			t.Errorf("%s: Section %q, document says %q", key, e.Section, w.section)
		}
		if !bytes.Equal(e.Body, w.body) {
			t.Errorf("%s differs from the document:\nembedded: %q\ndocument: %q", key, e.Body, w.body)
		}
	}
	for _, e := range got {
		if !seen[e.Provider+"/"+e.Name] {
			t.Errorf("%s/%s is embedded but not in the documents", e.Provider, e.Name)
		}
	}
	var sections []string
	for _, e := range Provider(TheCity) {
		sections = append(sections, e.Section)
	}
	slices.Sort(sections)
	sections = slices.Compact(sections)
	slices.Sort(citySections)
	if !slices.Equal(sections, citySections) {
		t.Errorf("City sections embedded %q, documented %q", sections, citySections)
	}
}

// writeExamples replaces the example directories' JSON files with want.
func writeExamples(t *testing.T, want []extracted) {
	t.Helper()
	for _, provider := range []string{ControlShift, TheCity} {
		old, err := filepath.Glob(filepath.Join(provider, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, w := range want {
		if err := os.WriteFile(filepath.Join(w.provider, w.name+".json"), w.body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCounts(t *testing.T) {
	if n := len(Provider(ControlShift)); n != 22 {
		t.Errorf("%d ControlShift examples, want 22", n)
	}
	if n := len(Provider(TheCity)); n != 23 {
		t.Errorf("%d City examples, want 23", n)
	}
	if n := len(All()); n != 45 {
		t.Errorf("%d examples in all, want 45", n)
	}
	sections := map[string]map[string]bool{ControlShift: {}, TheCity: {}}
	for _, e := range All() {
		sections[e.Provider][e.Section] = true
	}
	if n := len(sections[ControlShift]); n != 22 {
		t.Errorf("%d ControlShift sections, want 22", n)
	}
	if n := len(sections[TheCity]); n != 21 {
		t.Errorf("%d City sections, want 21", n)
	}
}

func TestControlShiftExamplesAreStrictJSON(t *testing.T) {
	for _, e := range Provider(ControlShift) {
		if !json.Valid(e.Body) {
			t.Errorf("%s is not strict JSON", e.Name)
			continue
		}
		var p struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
			JID  string          `json:"jid"`
		}
		if err := json.Unmarshal(e.Body, &p); err != nil {
			t.Errorf("%s: %v", e.Name, err)
			continue
		}
		if p.Type != e.Name || e.Section != e.Name {
			t.Errorf("%s: type %q, section %q", e.Name, p.Type, e.Section)
		}
		if !bytes.HasPrefix(bytes.TrimSpace(p.Data), []byte("{")) {
			t.Errorf("%s: data is not an object: %s", e.Name, p.Data)
		}
		if len(p.JID) != 24 {
			t.Errorf("%s: jid %q is not a 24-character job id", e.Name, p.JID)
		}
		if bytes.HasSuffix(e.Body, []byte("\n")) || !bytes.HasSuffix(e.Body, []byte("}")) {
			t.Errorf("%s: body must end at its closing brace", e.Name)
		}
	}
}

func TestCityExamplesNormalize(t *testing.T) {
	var nonStrict []string
	for _, e := range Provider(TheCity) {
		if !json.Valid(e.Body) {
			nonStrict = append(nonStrict, e.Name)
		}
		if bytes.ContainsAny(e.Body, "\r\n") {
			t.Errorf("%s: City examples are single lines", e.Name)
		}
		norm, err := jsonread.Normalize(e.Body)
		if err != nil {
			t.Errorf("%s: %v", e.Name, err)
			continue
		}
		var p map[string]any
		if err := json.Unmarshal(norm, &p); err != nil {
			t.Errorf("%s: normalized body does not decode: %v", e.Name, err)
			continue
		}
		object, _ := p["webhook_object"].(string)
		event, _ := p["webhook_event"].(string)
		if object == "" && event == "" {
			object, _ = p["object"].(string)
			event, _ = p["event"].(string)
		}
		if object == "" || event == "" {
			t.Errorf("%s: no webhook_object/webhook_event (or object/event)", e.Name)
			continue
		}
		secObject, secEvent, _ := strings.Cut(e.Section, "#")
		if event != secEvent || !strings.HasPrefix(strings.ToLower(secObject), strings.ToLower(object)) {
			t.Errorf("%s: payload says %s#%s, section is %s", e.Name, object, event, e.Section)
		}
	}
	want := []string{"checkins_check_out", "checkins_create", "groups_create", "groups_update", "roles_create"}
	if !slices.Equal(nonStrict, want) {
		t.Errorf("non-strict City examples %q, want %q", nonStrict, want)
	}
}

func TestGetAndProvider(t *testing.T) {
	e, ok := Get(TheCity, "addresses_create_group")
	if !ok {
		t.Fatal("addresses_create_group not found")
	}
	if e.Provider != TheCity || e.Section != "Addresses#create" || !bytes.Contains(e.Body, []byte(`"group_id":839047027`)) {
		t.Errorf("unexpected example %+v", e)
	}
	e.Body[0] = 'X'
	again, _ := Get(TheCity, "addresses_create_group")
	if again.Body[0] != '{' {
		t.Error("modifying a returned body changed the embedded example")
	}
	if c, ok := Get(TheCity, "checkins_check_out"); !ok || c.Section != "Checkins#check_out" {
		t.Errorf("checkins_check_out: %v %q", ok, c.Section)
	}
	if _, ok := Get(ControlShift, "addresses_create_group"); ok {
		t.Error("found a City example under ControlShift")
	}
	if _, ok := Get(ControlShift, "petition.nope"); ok {
		t.Error("found an undocumented example")
	}
	if got := Provider("mailchimp"); got != nil {
		t.Errorf("unknown provider returned %d examples", len(got))
	}
}

func TestAllOrder(t *testing.T) {
	all := All()
	sorted := slices.IsSortedFunc(all, func(a, b Example) int {
		if a.Provider != b.Provider {
			if a.Provider == ControlShift {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	if !sorted || all[0].Provider != ControlShift || all[len(all)-1].Provider != TheCity {
		t.Error("All is not ControlShift then The City, each sorted by name")
	}
	for i, e := range All() {
		if e.Name != all[i].Name || !bytes.Equal(e.Body, all[i].Body) {
			t.Fatalf("All changed between calls at %d", i)
		}
	}
}

func TestCitySection(t *testing.T) {
	for name, want := range map[string]string{
		"addresses_create_user": "Addresses#create",
		"checkins_check_out":    "Checkins#check_out",
		"grouptags_destroy":     "GroupTags#destroy",
		"duplicates_merge":      "Duplicates#merge",
		"users_update":          "Users#update",
		"users_updated":         "",
		"widgets_create":        "",
		"users":                 "",
		"":                      "",
	} {
		if got := citySection(name); got != want {
			t.Errorf("citySection(%q) = %q, want %q", name, got, want)
		}
	}
	for _, e := range All() {
		if e.Section == "" {
			t.Errorf("%s/%s: file name does not map to a documented section", e.Provider, e.Name)
		}
	}
}

func TestEmbeddedFilesAreAllListed(t *testing.T) {
	n := 0
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if n != len(All()) {
		t.Errorf("%d embedded files, %d examples", n, len(All()))
	}
}
