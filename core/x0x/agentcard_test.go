package x0x

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// a2aSchemaFile is the A2A specification's JSON schema, vendored unchanged
// (testdata/README.md says where from, and under which licence).
var a2aSchemaFile = filepath.Join("testdata", "a2a-0.3.0.json")

// The card of an agent, with and without options, is valid against the
// A2A schema's AgentCard definition; every property it writes is one the
// schema declares (so the JSON names are the specification's).
func TestAgentCardMatchesA2ASchema(t *testing.T) {
	v := loadA2ASchema(t)
	a := build(t, NewBuilder().WithDataDir(t.TempDir()).WithKDF(cheapKDF()))
	cards := map[string]AgentCard{
		"defaults": a.AgentCard(AgentCardOptions{}),
		"every option": a.AgentCard(AgentCardOptions{
			Name:             "planner",
			Description:      "Plans launches.",
			URL:              "http://127.0.0.1:12600/",
			Transport:        "X0XD-HTTP",
			Version:          "2.1.0",
			Provider:         &AgentProvider{Organization: "Example Org", URL: "https://example.org"},
			DocumentationURL: "https://example.org/docs",
			IconURL:          "https://example.org/icon.png",
			Skills: []AgentSkill{{ID: "plan", Name: "Plan", Description: "Plans a launch.", Tags: []string{"planning"},
				Examples: []string{"plan the launch"}}},
		}),
	}
	for name, card := range cards {
		doc := jsonValue(t, card)
		if errs := v.validate("AgentCard", v.definition(t, "AgentCard"), doc); len(errs) > 0 {
			t.Errorf("%s: the card is not a valid A2A AgentCard:\n  %s\n%s", name, strings.Join(errs, "\n  "), indent(t, card))
		}
	}

	// The protocol version is the one of the vendored schema.
	props := v.definition(t, "AgentCard")["properties"].(map[string]any)
	if def := props["protocolVersion"].(map[string]any)["default"]; def != A2AProtocolVersion {
		t.Errorf("A2AProtocolVersion = %q, the schema's is %v", A2AProtocolVersion, def)
	}
}

// What the card says about the agent is true and usable: its x0x URL and
// the extension's bootstrap address reach the agent's node.
func TestAgentCardDescribesTheAgent(t *testing.T) {
	a := build(t, NewBuilder().WithDataDir(t.TempDir()).WithKDF(cheapKDF()))
	card := a.AgentCard(AgentCardOptions{})
	id, machine := a.AgentID().String(), a.MachineID().String()

	if card.ProtocolVersion != A2AProtocolVersion || card.Version != Version || card.PreferredTransport != A2ATransport {
		t.Errorf("protocolVersion %q, version %q, preferredTransport %q", card.ProtocolVersion, card.Version, card.PreferredTransport)
	}
	if card.Name != "x0x agent "+a.AgentID().Short() || !strings.Contains(card.Description, id) {
		t.Errorf("name %q, description %q", card.Name, card.Description)
	}
	u, err := url.Parse(card.URL)
	if err != nil || u.Scheme != "x0x" || u.User.Username() != machine || u.Host != a.AdvertisedAddr() || u.Path != "/"+id {
		t.Errorf("url %q (%v): want x0x://%s@%s/%s", card.URL, err, machine, a.AdvertisedAddr(), id)
	}
	if card.URL != a.AgentURL() || !reflect.DeepEqual(card.AdditionalInterfaces, []AgentInterface{{URL: card.URL, Transport: A2ATransport}}) {
		t.Errorf("additionalInterfaces %+v", card.AdditionalInterfaces)
	}
	var skills []string
	for _, s := range card.Skills {
		skills = append(skills, s.ID)
	}
	if want := []string{"x0x-pubsub", "x0x-direct", "x0x-tasklists", "x0x-groups"}; !slices.Equal(skills, want) {
		t.Errorf("skills %v, want %v", skills, want)
	}
	if c := card.Capabilities; c.Streaming || c.PushNotifications || c.StateTransitionHistory || len(c.Extensions) != 1 {
		t.Fatalf("capabilities %+v", c)
	}
	ext := card.Capabilities.Extensions[0]
	if ext.URI != AgentCardExtensionURI || ext.Required || ext.Params["agentId"] != id || ext.Params["machineId"] != machine ||
		ext.Params["address"] != a.AdvertisedAddr() {
		t.Fatalf("x0x extension %+v", ext)
	}

	// Another agent joins the network through the card's bootstrap address.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := build(t, NewBuilder().WithDataDir(t.TempDir()).WithKDF(cheapKDF()).WithBootstrap(ext.Params["bootstrap"].(string)))
	if err := b.JoinNetwork(ctx); err != nil {
		t.Fatalf("joining through the card's bootstrap %q: %v", ext.Params["bootstrap"], err)
	}
	if err := b.WaitForAgent(ctx, a.AgentID()); err != nil {
		t.Fatal(err)
	}

	// With a URL of its own (x0xd's HTTP endpoint), the x0x URL stays listed.
	served := a.AgentCard(AgentCardOptions{URL: "http://127.0.0.1:12600/", Transport: "X0XD-HTTP"})
	want := []AgentInterface{{URL: "http://127.0.0.1:12600/", Transport: "X0XD-HTTP"}, {URL: a.AgentURL(), Transport: A2ATransport}}
	if served.URL != want[0].URL || served.PreferredTransport != want[0].Transport || !reflect.DeepEqual(served.AdditionalInterfaces, want) {
		t.Errorf("served card: url %q, preferredTransport %q, additionalInterfaces %+v", served.URL, served.PreferredTransport, served.AdditionalInterfaces)
	}
}

// The validator finds each kind of mistake it checks for; otherwise the
// schema test above would prove nothing.
func TestSchemaValidatorCatchesMistakes(t *testing.T) {
	v := loadA2ASchema(t)
	agentCard := v.definition(t, "AgentCard")
	valid := `{"protocolVersion":"0.3.0","name":"n","description":"d","url":"x0x://a@127.0.0.1:1/b","version":"1",
		"capabilities":{"streaming":false,"extensions":[{"uri":"u","params":{"k":[1,{"x":null}]}}]},
		"defaultInputModes":["text/plain"],"defaultOutputModes":[],
		"skills":[{"id":"s","name":"S","description":"d","tags":[]}],
		"additionalInterfaces":[{"url":"x0x://a@127.0.0.1:1/b","transport":"X0X"}],
		"securitySchemes":{"k":{"type":"apiKey","in":"header","name":"X-Key"}},
		"security":[{"k":[]}]}`
	if errs := v.validate("AgentCard", agentCard, decodeJSON(t, valid)); len(errs) > 0 {
		t.Fatalf("a valid card was refused: %v", errs)
	}
	for _, c := range []struct{ name, from, to, want string }{
		{"required property missing", `"url":"x0x://a@127.0.0.1:1/b",`, ``, `AgentCard: required property "url" is missing`},
		{"wrong type", `"version":"1"`, `"version":1`, `AgentCard.version: 1 is not of type string`},
		{"null", `"name":"n"`, `"name":null`, `AgentCard.name: null is not of type string`},
		{"undeclared property", `"description":"d",`, `"description":"d","descripton":"d",`, `AgentCard: property "descripton" is not in the schema`},
		{"nested required", `"tags":[]`, `"tag":[]`, `AgentCard.skills[0]: required property "tags" is missing`},
		{"array items", `"defaultInputModes":["text/plain"]`, `"defaultInputModes":["text/plain",7]`, `AgentCard.defaultInputModes[1]: 7 is not of type string`},
		{"boolean", `"streaming":false`, `"streaming":"no"`, `AgentCard.capabilities.streaming: "no" is not of type boolean`},
		{"additionalProperties schema", `"security":[{"k":[]}]`, `"security":[{"k":"read"}]`, `AgentCard.security[0].k: "read" is not of type array`},
		{"anyOf", `"in":"header"`, `"in":"body"`, `AgentCard.securitySchemes.k: matches none of the 5 schemas of anyOf`},
		{"not an object", `"capabilities":{"streaming":false,`, `"capabilities":[],"x":{"streaming":false,`, `AgentCard.capabilities: [] is not of type object`},
	} {
		doc := strings.Replace(valid, c.from, c.to, 1)
		if doc == valid {
			t.Fatalf("%s: the mutation %q does not apply", c.name, c.from)
		}
		errs := v.validate("AgentCard", agentCard, decodeJSON(t, doc))
		if !slices.Contains(errs, c.want) {
			t.Errorf("%s: errors %q, want %q among them", c.name, errs, c.want)
		}
	}
	// Keywords it does not implement are errors, not silently ignored.
	if errs := v.validate("x", map[string]any{"type": "string", "minLength": json.Number("1")}, ""); len(errs) != 1 ||
		!strings.Contains(errs[0], `keyword "minLength"`) {
		t.Errorf("an unimplemented keyword: %v", errs)
	}
	// The whole vendored schema uses only what the validator implements.
	var unknown []string
	v.keywords("#", v.root, &unknown)
	if len(unknown) > 0 {
		t.Errorf("the schema uses keywords the validator does not implement: %v", unknown)
	}
}

// jsonSchema validates JSON values (decoded with UseNumber) against the
// part of JSON Schema draft-07 the A2A schema uses: $ref into the
// document, type, properties, required, additionalProperties, items, enum,
// const and anyOf; the annotations description, default, examples, title,
// $schema and definitions are skipped. Any other keyword is an error, so
// nothing is silently left unchecked. It is strict: an object property
// that the schema neither declares nor allows through additionalProperties
// is an error (draft-07 would allow it), which checks that the card's JSON
// names are the specification's.
type jsonSchema struct{ root map[string]any }

var schemaAssertions = map[string]bool{"$ref": true, "type": true, "properties": true, "required": true,
	"additionalProperties": true, "items": true, "enum": true, "const": true, "anyOf": true}
var schemaAnnotations = map[string]bool{"description": true, "default": true, "examples": true, "title": true,
	"$schema": true, "definitions": true}

func loadA2ASchema(t *testing.T) *jsonSchema {
	t.Helper()
	b, err := os.ReadFile(a2aSchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	root, ok := decodeJSON(t, string(b)).(map[string]any)
	if !ok || root["$schema"] != "http://json-schema.org/draft-07/schema#" {
		t.Fatalf("%s is not a draft-07 JSON schema", a2aSchemaFile)
	}
	return &jsonSchema{root: root}
}

func (v *jsonSchema) definition(t *testing.T, name string) map[string]any {
	t.Helper()
	d, ok := v.resolve("#/definitions/" + name)
	if !ok {
		t.Fatalf("the schema has no definition %q", name)
	}
	return d.(map[string]any)
}

// resolve follows a JSON pointer reference within the document.
func (v *jsonSchema) resolve(ref string) (any, bool) {
	rest, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, false
	}
	var node any = v.root
	for _, tok := range strings.Split(rest, "/")[1:] {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := node.(map[string]any)
		if !ok {
			return nil, false
		}
		if node, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return node, true
}

// validate returns one message per violation, each starting with the
// value's path.
func (v *jsonSchema) validate(path string, schema, value any) []string {
	switch s := schema.(type) {
	case bool:
		if !s {
			return []string{path + ": no value is allowed here"}
		}
		return nil
	case map[string]any:
		return v.validateObject(path, s, value)
	}
	return []string{fmt.Sprintf("%s: the schema is a %T, not an object or a boolean", path, schema)}
}

func (v *jsonSchema) validateObject(path string, s map[string]any, value any) []string {
	if ref, ok := s["$ref"].(string); ok { // draft-07: a $ref's siblings are ignored
		target, ok := v.resolve(ref)
		if !ok {
			return []string{fmt.Sprintf("%s: unresolvable $ref %q", path, ref)}
		}
		return v.validate(path, target, value)
	}
	var errs []string
	for _, k := range sortedKeys(s) {
		if !schemaAssertions[k] && !schemaAnnotations[k] {
			errs = append(errs, fmt.Sprintf("%s: schema keyword %q is not implemented by this validator", path, k))
		}
	}
	if ts, ok := s["type"]; ok {
		var types []string
		switch ts := ts.(type) {
		case string:
			types = []string{ts}
		case []any:
			for _, x := range ts {
				types = append(types, fmt.Sprint(x))
			}
		}
		if !slices.ContainsFunc(types, func(typ string) bool { return hasType(value, typ) }) {
			return append(errs, fmt.Sprintf("%s: %s is not of type %s", path, compact(value), strings.Join(types, " or ")))
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return jsonEqual(e, value) }) {
		errs = append(errs, fmt.Sprintf("%s: %s is not one of %s", path, compact(value), compact(enum)))
	}
	if c, ok := s["const"]; ok && !jsonEqual(c, value) {
		errs = append(errs, fmt.Sprintf("%s: %s is not %s", path, compact(value), compact(c)))
	}
	if anyOf, ok := s["anyOf"].([]any); ok && !slices.ContainsFunc(anyOf, func(sub any) bool { return len(v.validate(path, sub, value)) == 0 }) {
		errs = append(errs, fmt.Sprintf("%s: matches none of the %d schemas of anyOf", path, len(anyOf)))
	}
	switch val := value.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := val[r.(string)]; !ok {
					errs = append(errs, fmt.Sprintf("%s: required property %q is missing", path, r))
				}
			}
		}
		for _, k := range sortedKeys(val) {
			sub := path + "." + k
			if ps, ok := props[k]; ok {
				errs = append(errs, v.validate(sub, ps, val[k])...)
			} else if ap, ok := s["additionalProperties"]; ok {
				errs = append(errs, v.validate(sub, ap, val[k])...)
			} else if props != nil || s["type"] == "object" {
				errs = append(errs, fmt.Sprintf("%s: property %q is not in the schema", path, k))
			}
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, x := range val {
				errs = append(errs, v.validate(fmt.Sprintf("%s[%d]", path, i), items, x)...)
			}
		}
	}
	return errs
}

// keywords collects the schema keywords of a schema document that the
// validator does not implement.
func (v *jsonSchema) keywords(path string, schema any, unknown *[]string) {
	s, ok := schema.(map[string]any)
	if !ok {
		return
	}
	for _, k := range sortedKeys(s) {
		switch {
		case k == "properties" || k == "definitions":
			for _, name := range sortedKeys(s[k].(map[string]any)) {
				v.keywords(path+"/"+k+"/"+name, s[k].(map[string]any)[name], unknown)
			}
		case k == "items" || k == "additionalProperties":
			v.keywords(path+"/"+k, s[k], unknown)
		case k == "anyOf":
			for i, sub := range s[k].([]any) {
				v.keywords(fmt.Sprintf("%s/%s/%d", path, k, i), sub, unknown)
			}
		case !schemaAssertions[k] && !schemaAnnotations[k]:
			*unknown = append(*unknown, path+"/"+k)
		}
	}
}

func hasType(value any, typ string) bool {
	switch typ {
	case "null":
		return value == nil
	case "boolean":
		_, ok := value.(bool)
		return ok
	case "string":
		_, ok := value.(string)
		return ok
	case "object":
		_, ok := value.(map[string]any)
		return ok
	case "array":
		_, ok := value.([]any)
		return ok
	case "number", "integer":
		n, ok := value.(json.Number)
		if !ok {
			return false
		}
		f, err := strconv.ParseFloat(string(n), 64)
		return err == nil && (typ == "number" || f == math.Trunc(f))
	}
	return false
}

// jsonEqual compares two decoded JSON values (numbers by value).
func jsonEqual(a, b any) bool {
	na, aok := a.(json.Number)
	nb, bok := b.(json.Number)
	if aok && bok {
		fa, err1 := na.Float64()
		fb, err2 := nb.Float64()
		return err1 == nil && err2 == nil && fa == fb
	}
	return reflect.DeepEqual(a, b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return v
}

// jsonValue is x marshalled to JSON and decoded back as a plain value.
func jsonValue(t *testing.T, x any) any {
	t.Helper()
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	return decodeJSON(t, string(b))
}

func compact(x any) string {
	b, err := json.Marshal(x)
	if err != nil {
		return fmt.Sprint(x)
	}
	return string(b)
}

func indent(t *testing.T, x any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("  ", "  ")
	if err := enc.Encode(x); err != nil {
		t.Fatal(err)
	}
	return "  " + buf.String()
}
