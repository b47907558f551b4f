package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// Decode reads a vault schema strictly, then normalizes and validates it.
// Strictly means that an unknown or repeated field is refused with its
// path named, and field names must match exactly: encoding/json alone
// would ignore a misspelt "tokenType" or accept "Unique", and a schema
// that silently loses a setting is worse than one that is refused.
func Decode(raw []byte) (*Vault, error) {
	if err := checkFields(raw); err != nil {
		return nil, err
	}
	var v Vault
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, decodeError(err)
	}
	v.Normalize()
	if err := v.Validate(); err != nil {
		return nil, err
	}
	return &v, nil
}

// shape is the expected form of a JSON value: an object with known
// fields, an array of elements, or (nil) anything.
type shape struct {
	fields []string
	of     map[string]*shape
	elem   *shape
}

func object(fields ...string) *shape {
	s := &shape{fields: fields, of: map[string]*shape{}}
	for _, f := range fields {
		s.of[f] = nil
	}
	return s
}

func (s *shape) with(field string, sub *shape) *shape {
	s.of[field] = sub
	return s
}

var vaultShape = object("name", "description", "tables").
	with("tables", &shape{elem: object("name", "columns").
		with("columns", &shape{elem: object("name", "data_type", "token_type", "redaction", "mask", "unique", "column_group", "validation", "data_subject").
			with("validation", object("kind", "regex"))})})

// maxDepth is far deeper than a schema goes, and keeps the walk from
// recursing without bound on hostile input.
const maxDepth = 32

// checkFields walks the JSON and refuses unknown, misspelt and repeated
// fields, naming where they are. Type errors are left to json.Decode.
func checkFields(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := walk(dec, vaultShape, "", 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return apierr.InvalidArgument("the vault schema must be a single JSON object; remove what follows it")
	}
	return nil
}

func walk(dec *json.Decoder, s *shape, path string, depth int) error {
	if depth > maxDepth {
		return apierr.InvalidArgument("the vault schema is nested too deeply at %s", where(path))
	}
	tok, err := dec.Token()
	if err != nil {
		return decodeError(err)
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch delim {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return decodeError(err)
			}
			key, _ := tok.(string)
			var sub *shape
			if s != nil && s.of != nil {
				var known bool
				if sub, known = s.of[key]; !known {
					return apierr.InvalidArgument("%s: unknown field %s; the fields are %s (lower case)", where(path), quoteShort(key), strings.Join(s.fields, ", "))
				}
				if seen[key] {
					return apierr.InvalidArgument("%s: field %q appears twice; give it once", where(path), key)
				}
				seen[key] = true
			}
			if err := walk(dec, sub, join(path, key), depth+1); err != nil {
				return err
			}
		}
	case '[':
		var elem *shape
		if s != nil {
			elem = s.elem
		}
		for i := 0; dec.More(); i++ {
			if err := walk(dec, elem, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return decodeError(err)
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func where(path string) string {
	if path == "" {
		return "the vault schema"
	}
	return path
}

// decodeError turns an encoding/json error into a message that says where
// and what, without quoting the input.
func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return apierr.InvalidArgument("the vault schema is not valid JSON (at byte %d)", syn.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return apierr.InvalidArgument("the vault schema is not valid JSON: it ends early")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return apierr.InvalidArgument("the vault schema must be a JSON object with name and tables")
		}
		return apierr.InvalidArgument("%s: is a JSON %s; it must be %s", typ.Field, typ.Value, jsonKind(typ.Type))
	}
	// Unknown fields are caught by checkFields first; anything else is
	// unexpected, so say little.
	return apierr.InvalidArgument("the vault schema could not be read: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Pointer, reflect.Map:
		return "an object"
	}
	return "a " + t.Kind().String()
}
