package webhooks

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// Limits of an endpoint's event type patterns.
const (
	MaxPatterns      = 50
	MaxPatternLength = 200
)

// TypePrefix is what every event type (and so every pattern) starts with.
const TypePrefix = "com.skyflow."

// ReplySuffix ends the types of replies to requests: they are answers to
// one caller, not domain events, and are never delivered.
const ReplySuffix = ".response"

var (
	// An exact type: com.skyflow.<segment>[.<segment>…], segments of
	// lower-case letters, digits, '_' and '-', starting with a letter or
	// digit.
	exactPattern = regexp.MustCompile(`^com\.skyflow(\.[a-z0-9][a-z0-9_-]*)+$`)
	// A prefix: com.skyflow.[<segment>.…] followed by '*' (or nothing).
	prefixPattern = regexp.MustCompile(`^com\.skyflow\.([a-z0-9][a-z0-9_-]*\.)*\*?$`)
)

// NormalizePatterns checks an endpoint's event type patterns and returns
// them in their canonical form, deduplicated in the order given: an exact
// type (com.skyflow.vault.record.created), or a prefix written with a
// trailing ".*" or "." (com.skyflow.vault.record.* and
// com.skyflow.vault.record. are the same pattern, kept as the first).
// com.skyflow.* takes every event.
func NormalizePatterns(patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return nil, apierr.InvalidArgument("eventTypes is required: give 1 to %d event types or prefixes such as com.skyflow.vault.record.created or com.skyflow.vault.record.*", MaxPatterns)
	}
	if len(patterns) > MaxPatterns {
		return nil, apierr.InvalidArgument("eventTypes has %d entries; at most %d are allowed (use a prefix such as com.skyflow.vault.* to cover many types)", len(patterns), MaxPatterns)
	}
	out := make([]string, 0, len(patterns))
	for i, p := range patterns {
		c, err := normalizePattern(p)
		if err != nil {
			return nil, apierr.InvalidArgument("eventTypes[%d]: %s", i, err)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

func normalizePattern(p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("is empty")
	case len(p) > MaxPatternLength:
		return "", fmt.Errorf("is longer than %d characters", MaxPatternLength)
	case exactPattern.MatchString(p):
		if strings.HasSuffix(p, ReplySuffix) {
			return "", fmt.Errorf("%s replies answer one request and are never delivered to webhooks; subscribe to domain events such as com.skyflow.vault.record.created", ReplySuffix)
		}
		return p, nil
	case prefixPattern.MatchString(p):
		return strings.TrimSuffix(p, "*") + "*", nil
	}
	return "", fmt.Errorf("must be an event type such as com.skyflow.vault.record.created, or a prefix ending in .* such as com.skyflow.vault.record.* (lower-case letters, digits, '_' and '-' between the dots)")
}

// Match reports whether an event type matches one canonical pattern.
func Match(pattern, eventType string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(eventType, prefix) && len(eventType) > len(prefix)
	}
	return pattern == eventType
}

// MatchAny reports whether an event type matches any of the patterns.
func MatchAny(patterns []string, eventType string) bool {
	for _, p := range patterns {
		if Match(p, eventType) {
			return true
		}
	}
	return false
}

// Deliverable reports whether an event type is ever delivered to webhooks:
// Skyflow's domain events, not the replies to requests.
func Deliverable(eventType string) bool {
	return strings.HasPrefix(eventType, TypePrefix) && !strings.HasSuffix(eventType, ReplySuffix)
}
