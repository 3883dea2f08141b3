// Package docs owns the published platform contract v1: the AsyncAPI
// document (asyncapi.yaml), the JSON Schemas under schemas/ and the guide
// (contract.md). contract.md is the ground truth; the other files describe
// it in machine-readable form for platform teams and outside test tools.
//
// The package embeds the schemas and validates documents against them, so
// tests anywhere in the module can check what the firmware sends. It must
// not import the firmware, the simulator or telemetry/msg: the contract is
// checked against the code, never derived from it.
package docs

import (
	"bytes"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed schemas/*.json
var schemaFS embed.FS

// baseURL is where the embedded schemas are mounted for reference
// resolution. The scheme is private so nothing is ever fetched over the
// network; the schemas' relative $ids and $refs resolve against it.
const baseURL = "bangfu-embed:///schemas/"

// defsName is the shared definitions file; it is not a message.
const defsName = "defs"

// ErrUnknownSchema is returned for a name that is not one of Names().
var ErrUnknownSchema = errors.New("docs: unknown schema")

// b64 is the payload encoding of the signed envelope.
var b64 = base64.RawURLEncoding

var (
	initOnce sync.Once
	names    []string
	// compiled holds one lazily compiled schema per message name.
	// Each has its own compiler: a Compiler is not safe for concurrent
	// use, and the few kilobytes parsed twice cost nothing.
	compiled map[string]func() (*jsonschema.Schema, error)
)

func setup() {
	entries, err := fs.ReadDir(schemaFS, "schemas")
	if err != nil {
		// The directory is embedded at build time; this cannot fail.
		panic(fmt.Sprintf("docs: read embedded schemas: %v", err))
	}
	compiled = make(map[string]func() (*jsonschema.Schema, error))
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || name == defsName {
			continue
		}
		names = append(names, name)
		compiled[name] = sync.OnceValues(func() (*jsonschema.Schema, error) {
			return compile(name)
		})
	}
	slices.Sort(names)
}

func compile(name string) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(embedLoader{})
	// Check format (date-time) and the envelope's base64url/JSON payload,
	// not just the annotations.
	c.AssertFormat()
	c.AssertContent()
	c.RegisterContentEncoding(&jsonschema.Decoder{
		Name:   "base64url",
		Decode: b64.DecodeString,
	})
	sch, err := c.Compile(baseURL + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("docs: compile %s: %w", name, err)
	}
	return sch, nil
}

// embedLoader serves schema URLs under baseURL from the embedded files and
// refuses everything else (the metaschemas are built into jsonschema).
type embedLoader struct{}

func (embedLoader) Load(url string) (any, error) {
	rel, ok := strings.CutPrefix(url, baseURL)
	if !ok || rel == "" || strings.Contains(rel, "/") {
		return nil, fmt.Errorf("docs: refusing to load %q: only embedded schemas are available", url)
	}
	f, err := schemaFS.Open(path.Join("schemas", rel))
	if err != nil {
		return nil, fmt.Errorf("docs: %w", err)
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

// Names returns the message schema names, sorted: the file stems of
// schemas/*.json without the shared "defs". Each is a valid argument of
// Validate.
func Names() []string {
	initOnce.Do(setup)
	return slices.Clone(names)
}

// Validate checks one JSON document against the schema called name ("sale",
// "heartbeat", "envelope", …; see Names). For a signed message pass the
// decoded payload document, or use ValidateEnvelope on the wire bytes.
// A validation failure wraps a *jsonschema.ValidationError, whose text
// lists every violation with its JSON pointer.
func Validate(name string, doc []byte) error {
	initOnce.Do(setup)
	get, ok := compiled[name]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownSchema, name)
	}
	sch, err := get()
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("docs: %s: not a JSON document: %w", name, err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("docs: %s: %w", name, err)
	}
	return nil
}

// ValidateEnvelope checks the wire form of a signed message: the envelope
// against the envelope schema, then its decoded payload against the schema
// called name. It does not verify the signature (that needs the keys; see
// telemetry/msg). The retained state is not signed: use Validate for it.
func ValidateEnvelope(name string, wire []byte) error {
	if name == "envelope" || name == "state" {
		return fmt.Errorf("docs: %s is not carried in a signed envelope", name)
	}
	initOnce.Do(setup)
	if _, ok := compiled[name]; !ok {
		return fmt.Errorf("%w %q", ErrUnknownSchema, name)
	}
	if err := Validate("envelope", wire); err != nil {
		return err
	}
	var env struct {
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal(wire, &env); err != nil {
		return fmt.Errorf("docs: envelope: %w", err)
	}
	payload, err := b64.DecodeString(env.Payload)
	if err != nil {
		return fmt.Errorf("docs: envelope payload: %w", err)
	}
	return Validate(name, payload)
}
