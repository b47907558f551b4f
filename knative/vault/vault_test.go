package vault_test

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
	hclparser "github.com/hashicorp/hcl/hcl/parser"
	"sigs.k8s.io/yaml"
)

// The KEK and the identity the functions log in with.
const (
	kek            = "skyflow-kek"
	policyName     = "skyflow-functions"
	serviceAccount = "skyflow-functions"
	namespace      = "skyflow"
)

// wantPolicy is the whole policy: a path or capability added to the file
// must be added here too, on purpose.
var wantPolicy = map[string][]string{
	"transit/encrypt/" + kek: {"update"},
	"transit/decrypt/" + kek: {"update"},
	"transit/rewrap/" + kek:  {"update"},
	"transit/keys/" + kek:    {"read"},
}

// vaultKey is the glob of the vaults' own keys (crypto-shredding): the
// only glob allowed, and only on these paths with these capabilities.
const vaultKey = kek + "-vault-*"

var wantVaultKeyPolicy = map[string][]string{
	"transit/encrypt/" + vaultKey:          {"create", "update"}, // upsert: made on first use
	"transit/decrypt/" + vaultKey:          {"update"},
	"transit/keys/" + vaultKey + "/config": {"update"}, // deletion_allowed, before the delete
	"transit/keys/" + vaultKey:             {"delete"},
}

// vaultCapabilities are the capabilities Vault's ACL parser accepts.
var vaultCapabilities = []string{"create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe", "recover"}

// pathRule is one `path "…" { … }` stanza, decoded the way Vault decodes it.
type pathRule struct {
	Capabilities []string `hcl:"capabilities"`
}

// parsePolicy parses an ACL policy with the HCL v1 parser Vault itself uses
// (the hashicorp/hcl v1.0.1-vault-N line), and, like Vault, accepts only
// `path` stanzas with known keys at the top.
func parsePolicy(t *testing.T, src []byte) map[string][]string {
	t.Helper()
	file, err := hclparser.Parse(src)
	if err != nil {
		t.Fatalf("HCL: %v", err)
	}
	list, ok := file.Node.(*ast.ObjectList)
	if !ok {
		t.Fatalf("policy root is %T, want an object list", file.Node)
	}
	rules := map[string][]string{}
	for _, item := range list.Items {
		if len(item.Keys) != 2 || item.Keys[0].Token.Text != "path" {
			t.Errorf("line %d: only `path \"…\" { … }` stanzas are allowed", item.Pos().Line)
			continue
		}
		path := strings.Trim(item.Keys[1].Token.Text, `"`)
		obj, ok := item.Val.(*ast.ObjectType)
		if !ok {
			t.Errorf("path %q: body is %T, want an object", path, item.Val)
			continue
		}
		for _, field := range obj.List.Items {
			// Parameters constraints, wrapping TTLs, control groups: none
			// are needed, so none are allowed.
			if key := field.Keys[0].Token.Text; key != "capabilities" {
				t.Errorf("path %q: unexpected key %q", path, key)
			}
		}
		var r pathRule
		if err := hcl.DecodeObject(&r, item.Val); err != nil {
			t.Errorf("path %q: %v", path, err)
			continue
		}
		if _, dup := rules[path]; dup {
			t.Errorf("path %q appears twice", path)
		}
		rules[path] = r.Capabilities
	}
	return rules
}

func TestPolicy(t *testing.T) {
	src, err := os.ReadFile("skyflow-functions.hcl")
	if err != nil {
		t.Fatal(err)
	}
	rules := parsePolicy(t, src)

	// The vaults' own keys: exactly these rules, checked apart.
	for path, caps := range rules {
		if want, ok := wantVaultKeyPolicy[path]; ok {
			if !slices.Equal(caps, want) {
				t.Errorf("path %q: capabilities %v, want %v", path, caps, want)
			}
			delete(rules, path)
		} else if strings.Contains(path, vaultKey) {
			t.Errorf("path %q: a vault key path not in the expected list", path)
		}
	}
	for path := range wantVaultKeyPolicy {
		if _, ok := parsePolicy(t, src)[path]; !ok {
			t.Errorf("path %q is missing: deleting a vault could not destroy its key", path)
		}
	}

	// General limits on the KEK's rules, whatever the exact list.
	for path, caps := range rules {
		if !strings.HasPrefix(path, "transit/") {
			t.Errorf("path %q: only the Transit mount is allowed", path)
		}
		if strings.ContainsAny(path, "*+") {
			t.Errorf("path %q: no globs or segment wildcards", path)
		}
		if !strings.HasSuffix(path, "/"+kek) {
			t.Errorf("path %q: only the %s key", path, kek)
		}
		if strings.HasPrefix(path, "transit/export/") || strings.HasPrefix(path, "transit/backup/") {
			t.Errorf("path %q: the KEK must never leave Vault", path)
		}
		for _, c := range caps {
			if !slices.Contains(vaultCapabilities, c) {
				t.Errorf("path %q: %q is not a Vault capability", path, c)
			}
			if c != "read" && c != "update" {
				t.Errorf("path %q: capability %q; the functions only read key metadata and call encrypt/decrypt/rewrap", path, c)
			}
		}
		if strings.HasPrefix(path, "transit/keys/") && !slices.Equal(caps, []string{"read"}) {
			t.Errorf("path %q: capabilities %v; transit/keys/* may only be read (no create, rotate, config, delete)", path, caps)
		}
	}

	// And exactly this.
	if !maps.EqualFunc(rules, wantPolicy, slices.Equal[[]string]) {
		t.Errorf("policy is\n  %v\nwant\n  %v", rules, wantPolicy)
	}
}

// shellCommands returns the script's simple commands as words: line
// continuations joined, comments dropped, quotes removed. Enough for the
// straight-line `vault …` calls setup.sh makes; bash -n checks the syntax.
func shellCommands(t *testing.T, script string) [][]string {
	t.Helper()
	script = strings.ReplaceAll(script, "\\\n", " ")
	var cmds [][]string
	for line := range strings.SplitSeq(script, "\n") {
		words, err := shellWords(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
	}
	return cmds
}

// shellWords splits one line like the shell does for quoting, and stops at
// an unquoted #, ;, | or & so that the first word of a command is first.
func shellWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
		}
		cur.Reset()
		inWord = false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, errUnterminated
			}
			cur.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' && j+1 < len(line) {
					j++
				}
				cur.WriteByte(line[j])
			}
			if j >= len(line) {
				return nil, errUnterminated
			}
			i = j
			inWord = true
		case c == '#' && !inWord:
			flush()
			return words, nil
		case c == ' ' || c == '\t':
			flush()
		case c == ';' || c == '|' || c == '&':
			flush()
			if len(words) > 0 {
				return words, nil
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words, nil
}

type shellError string

func (e shellError) Error() string { return string(e) }

const errUnterminated = shellError("unterminated quote")

// vaultCall finds `vault <verb…> <path> key=value…` and returns its
// key=value arguments; ok is false when the script has no such call.
func vaultCall(cmds [][]string, prefix ...string) (args map[string]string, ok bool) {
	for _, words := range cmds {
		// Skip shell keywords in front (if, then, !).
		for len(words) > 0 && slices.Contains([]string{"if", "then", "elif", "!", "else"}, words[0]) {
			words = words[1:]
		}
		if len(words) < len(prefix)+1 || words[0] != "vault" || !slices.Equal(words[1:1+len(prefix)], prefix) {
			continue
		}
		args = map[string]string{}
		for _, w := range words[1+len(prefix):] {
			if k, v, found := strings.Cut(w, "="); found && !strings.HasPrefix(k, "-") {
				args[k] = v
			}
		}
		return args, true
	}
	return nil, false
}

func TestSetupScriptSyntax(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not on PATH")
	}
	if out, err := exec.Command(bash, "-n", "setup.sh").CombinedOutput(); err != nil {
		t.Fatalf("bash -n setup.sh: %v\n%s", err, out)
	}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		if out, err := exec.Command(sc, "setup.sh").CombinedOutput(); err != nil {
			t.Errorf("shellcheck setup.sh: %v\n%s", err, out)
		}
	}
	info, err := os.Stat("setup.sh")
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode()&0o111 == 0 {
		t.Error("setup.sh is not executable")
	}
}

func TestSetupScript(t *testing.T) {
	src, err := os.ReadFile("setup.sh")
	if err != nil {
		t.Fatal(err)
	}
	script := string(src)
	cmds := shellCommands(t, script)

	// Strict mode before the first command.
	if len(cmds) == 0 || !slices.Equal(cmds[0], []string{"set", "-euo", "pipefail"}) {
		t.Errorf("the first command must be `set -euo pipefail`, got %v", cmds[0])
	}

	if _, ok := vaultCall(cmds, "secrets", "enable", "-path=transit", "transit"); !ok {
		t.Error("no `vault secrets enable -path=transit transit`")
	}

	key, ok := vaultCall(cmds, "write", "transit/keys/"+kek)
	if !ok {
		t.Fatalf("no `vault write transit/keys/%s`", kek)
	}
	for k, want := range map[string]string{"type": "aes256-gcm96", "exportable": "false", "allow_plaintext_backup": "false"} {
		if key[k] != want {
			t.Errorf("key creation: %s=%q, want %q", k, key[k], want)
		}
	}
	cfg, ok := vaultCall(cmds, "write", "transit/keys/"+kek+"/config")
	if !ok || cfg["deletion_allowed"] != "false" {
		t.Errorf("no `vault write transit/keys/%s/config deletion_allowed=false` (got %v)", kek, cfg)
	}
	for _, bad := range []string{"exportable=true", "deletion_allowed=true", "allow_plaintext_backup=true"} {
		if strings.Contains(script, bad) {
			t.Errorf("setup.sh contains %s", bad)
		}
	}

	// The policy written is this directory's file.
	policyCall := -1
	for i, words := range cmds {
		if len(words) >= 4 && slices.Equal(words[:4], []string{"vault", "policy", "write", policyName}) {
			policyCall = i
			if len(words) != 5 {
				t.Errorf("`vault policy write %s` takes one file, got %v", policyName, words)
			}
		}
	}
	if policyCall < 0 {
		t.Errorf("no `vault policy write %s <file>`", policyName)
	} else if file := cmds[policyCall][4]; !strings.HasSuffix(file, "skyflow-functions.hcl") &&
		!regexp.MustCompile(`(?m)^policy_file="[^"\n]*/skyflow-functions\.hcl"$`).MatchString(script) {
		t.Errorf("the policy written (%s) is not skyflow-functions.hcl", file)
	}

	if _, ok := vaultCall(cmds, "auth", "enable", "-path=kubernetes", "kubernetes"); !ok {
		t.Error("no `vault auth enable -path=kubernetes kubernetes`")
	}
	if _, ok := vaultCall(cmds, "write", "auth/kubernetes/config"); !ok {
		t.Error("no `vault write auth/kubernetes/config …`")
	}

	role, ok := vaultCall(cmds, "write", "auth/kubernetes/role/"+policyName)
	if !ok {
		t.Fatalf("no `vault write auth/kubernetes/role/%s`", policyName)
	}
	for k, want := range map[string]string{
		"bound_service_account_names":      serviceAccount,
		"bound_service_account_namespaces": namespace,
		"token_policies":                   policyName,
		"token_no_default_policy":          "true",
	} {
		if role[k] != want {
			t.Errorf("role: %s=%q, want %q", k, role[k], want)
		}
	}
	if _, old := role["policies"]; old {
		t.Error("role: use token_policies, not the deprecated policies")
	}
	for _, k := range []string{"token_ttl", "token_max_ttl"} {
		d, err := time.ParseDuration(role[k])
		if err != nil || d <= 0 || d > time.Hour {
			t.Errorf("role: %s=%q, want a short TTL (at most 1h)", k, role[k])
		}
	}
}

// TestServiceAccountMatches checks that the ServiceAccount the functions run
// as (knative/base) is the one the role is bound to.
func TestServiceAccountMatches(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "base", "serviceaccount.yaml"))
	if os.IsNotExist(err) {
		t.Skip("knative/base/serviceaccount.yaml does not exist")
	}
	if err != nil {
		t.Fatal(err)
	}
	var sa struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		AutomountServiceAccountToken *bool `json:"automountServiceAccountToken"`
	}
	if err := yaml.Unmarshal(data, &sa); err != nil {
		t.Fatal(err)
	}
	if sa.Kind != "ServiceAccount" || sa.Metadata.Name != serviceAccount {
		t.Errorf("knative/base/serviceaccount.yaml is %s %q, want ServiceAccount %q", sa.Kind, sa.Metadata.Name, serviceAccount)
	}
	if sa.AutomountServiceAccountToken != nil && !*sa.AutomountServiceAccountToken {
		t.Error("the functions' ServiceAccount token must be mounted for Vault's Kubernetes login")
	}
}
