// Package policy decides what a principal may do in a vault. A vault's
// policy grants rights to roles; a principal holds roles (from its access
// token, through the gateway) and gets the union of their rights. Anything
// not granted is denied.
//
// The policy is evaluated inside each function, not at the gateway, so a
// request that reaches a function by any other path is still checked.
package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"

	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// PlatformAdmin is the platform role that may create vaults and manage any
// vault's schema and policy. It grants no access to data: an
// administrator reads records only through a role the vault's policy
// names (separation of duties).
const PlatformAdmin = "admin"

// All is the wildcard for "every table" or "every column".
const All = "*"

// Policy is a vault's policy: role id → rights.
type Policy struct {
	Roles map[string]Role `json:"roles"`
}

// Role is what one role may do in the vault.
type Role struct {
	// Tables: table name or "*" → rights on it.
	Tables map[string]TableRights `json:"tables,omitempty"`
	// Tokenize: may look up the deterministic token of a value.
	Tokenize bool `json:"tokenize,omitempty"`
	// Detokenize: may turn tokens back into values, at no more than the
	// column's read redaction.
	Detokenize bool `json:"detokenize,omitempty"`
	// Manage: may read and change the vault's schema and policy.
	Manage bool `json:"manage,omitempty"`
}

// TableRights are a role's rights on one table.
type TableRights struct {
	Insert bool `json:"insert,omitempty"`
	Update bool `json:"update,omitempty"`
	Delete bool `json:"delete,omitempty"`
	// Read: column name or "*" → the clearest redaction the role may
	// read it at; DEFAULT means the column's own default redaction.
	Read map[string]schema.Redaction `json:"read,omitempty"`
}

// Action is a right on a table or on the vault.
type Action string

const (
	Insert     Action = "insert"
	Update     Action = "update"
	Delete     Action = "delete"
	Read       Action = "read"
	Tokenize   Action = "tokenize"
	Detokenize Action = "detokenize"
	Manage     Action = "manage"
)

var roleID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)

// Decode reads a policy strictly (unknown fields are refused) and checks
// it against the vault's schema.
func Decode(raw []byte, v *schema.Vault) (*Policy, error) {
	var p Policy
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, apierr.InvalidArgument("the policy is not valid: %s", describe(err))
	}
	if err := p.Validate(v); err != nil {
		return nil, err
	}
	return &p, nil
}

func describe(err error) string {
	if ute, ok := err.(*json.UnmarshalTypeError); ok {
		return fmt.Sprintf("%s has the wrong JSON type", ute.Field)
	}
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("not JSON (at byte %d)", se.Offset)
	}
	return err.Error()
}

// Validate checks that every role id is well formed, and that every table,
// column and redaction the policy names exists in the schema.
func (p *Policy) Validate(v *schema.Vault) error {
	for _, id := range sortedKeys(p.Roles) {
		if !roleID.MatchString(id) {
			return apierr.InvalidArgument("policy: role id %q must be 1–128 letters, digits or _ . : - and start with a letter or digit", id)
		}
		for _, tname := range sortedKeys(p.Roles[id].Tables) {
			rights := p.Roles[id].Tables[tname]
			var table *schema.Table
			if tname != All {
				t, ok := v.Table(tname)
				if !ok {
					return apierr.InvalidArgument("policy: roles.%s.tables names table %q, which the vault does not have", id, tname)
				}
				table = t
			}
			for _, cname := range sortedKeys(rights.Read) {
				if cname != All {
					if table == nil {
						return apierr.InvalidArgument("policy: roles.%s.tables.*.read may only use \"*\" for columns, since it applies to every table", id)
					}
					if _, ok := table.Column(cname); !ok {
						return apierr.InvalidArgument("policy: roles.%s.tables.%s.read names column %q, which table %q does not have", id, tname, cname, tname)
					}
				}
				if _, err := schema.ParseRedaction(string(rights.Read[cname])); err != nil || rights.Read[cname] == "" {
					return apierr.InvalidArgument("policy: roles.%s.tables.%s.read.%s must be one of DEFAULT, REDACTED, MASKED, PLAIN_TEXT", id, tname, cname)
				}
			}
		}
	}
	return nil
}

// Can reports whether any of roles has action on table (table is ignored
// for the vault-wide actions Tokenize, Detokenize and Manage).
func (p *Policy) Can(roles []string, action Action, table string) bool {
	for _, id := range roles {
		r, ok := p.Roles[id]
		if !ok {
			continue
		}
		switch action {
		case Tokenize:
			if r.Tokenize {
				return true
			}
		case Detokenize:
			if r.Detokenize {
				return true
			}
		case Manage:
			if r.Manage {
				return true
			}
		default:
			for _, rights := range []TableRights{r.Tables[table], r.Tables[All]} {
				if rights.allows(action) {
					return true
				}
			}
		}
	}
	return false
}

func (t TableRights) allows(a Action) bool {
	switch a {
	case Insert:
		return t.Insert
	case Update:
		return t.Update
	case Delete:
		return t.Delete
	case Read:
		return len(t.Read) > 0
	}
	return false
}

// Knows reports whether any of roles appears in the policy at all. A
// principal the vault does not know is told the vault does not exist.
func (p *Policy) Knows(roles []string) bool {
	for _, id := range roles {
		if _, ok := p.Roles[id]; ok {
			return true
		}
	}
	return false
}

// ReadLevel is the clearest redaction any of roles may read the column at;
// ok is false when none may read it.
func (p *Policy) ReadLevel(roles []string, table *schema.Table, column *schema.Column) (level schema.Redaction, ok bool) {
	for _, id := range roles {
		r, known := p.Roles[id]
		if !known {
			continue
		}
		for _, tname := range []string{table.Name, All} {
			read := r.Tables[tname].Read
			for _, cname := range []string{column.Name, All} {
				granted, has := read[cname]
				if !has {
					continue
				}
				if granted == schema.Default {
					granted = column.Redaction
				}
				if !ok || granted.Rank() > level.Rank() {
					level, ok = granted, true
				}
			}
		}
	}
	return level, ok
}

// Resolve turns a requested redaction into the one to answer with:
// DEFAULT becomes the principal's level for the column; anything clearer
// than that level is refused, with a message that says what to ask for.
func (p *Policy) Resolve(roles []string, table *schema.Table, column *schema.Column, requested schema.Redaction) (schema.Redaction, error) {
	level, ok := p.ReadLevel(roles, table, column)
	if !ok {
		return "", apierr.PermissionDenied("your roles may not read column %q of table %q", column.Name, table.Name)
	}
	if requested == schema.Default || requested == "" {
		return level, nil
	}
	if requested.Rank() > level.Rank() {
		return "", apierr.PermissionDenied("your roles may read column %q of table %q at most %s: ask for redaction %s or DEFAULT", column.Name, table.Name, level, level)
	}
	return requested, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
