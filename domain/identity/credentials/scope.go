package credentials

import (
	"regexp"
	"strings"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// roleID is the shape of a role id, the same as domain/vaults/policy accepts.
var roleID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)

// maxScopeRoles bounds the roles one token request may name.
const maxScopeRoles = 100

// ParseScope reads the scope of a token request, "role:<id> role:<id>"
// (items separated by spaces, as OAuth scopes are), and returns the role ids
// in order, without repeats. An empty scope gives no ids; what that means
// (for instance every role the account holds) is the caller's to decide.
// Anything else is refused (400) naming the offending item, so a typo is not
// silently dropped and the token issued with fewer roles than asked for.
func ParseScope(scope string) ([]string, error) {
	var ids []string
	seen := map[string]bool{}
	for _, item := range strings.Split(scope, " ") {
		if item == "" {
			continue // tolerate doubled spaces
		}
		id, ok := strings.CutPrefix(item, "role:")
		if !ok || !roleID.MatchString(id) {
			return nil, apierr.InvalidArgument("scope item %q is not \"role:<id>\"; the scope is role:<id> items separated by spaces, each id 1–128 letters, digits or _ . : - starting with a letter or digit", clip(item))
		}
		if seen[id] {
			continue
		}
		if len(ids) == maxScopeRoles {
			return nil, apierr.InvalidArgument("the scope names more than %d roles", maxScopeRoles)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	return ids, nil
}

// clip shortens an item quoted back in a message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	// Cut on a rune boundary so %q does not show a broken character.
	i := max
	for i > 0 && !isRuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
