package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/runtime/config"
)

func TestVAPIDKeysPrintsAPairThatLoads(t *testing.T) {
	var b strings.Builder
	if err := printVAPIDKeys(&b, "mailto:ops@example.com"); err != nil {
		t.Fatal(err)
	}
	get := func(key string) string {
		m := regexp.MustCompile(`--from-literal=` + key + `=(\S+)`).FindStringSubmatch(b.String())
		if m == nil {
			t.Fatalf("no %s in:\n%s", key, b.String())
		}
		return m[1]
	}
	env := config.FromMap(map[string]string{"SKYFLOW_VAPID_PUBLIC_KEY": get("public-key"), "SKYFLOW_VAPID_PRIVATE_KEY": get("private-key"), "SKYFLOW_VAPID_SUBJECT": get("subject")})
	if _, errs := push.VAPIDFromEnv(env); len(errs) != 0 || env.Err() != nil {
		t.Fatalf("the printed keys do not load: %v %v", errs, env.Err())
	}
	if runVAPIDKeys(nil) == nil || runVAPIDKeys([]string{"ops@example.com"}) == nil {
		t.Fatal("a missing or bad subject was taken")
	}
}
