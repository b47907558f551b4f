package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

func TestOpenFromEnvReportsEverySettingAtOnce(t *testing.T) {
	env := config.FromMap(map[string]string{"PORT": "eighty"})
	env.Int("PORT", 8080)
	_, err := db.OpenFromEnv(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), "PORT") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("err = %v, want both PORT and DATABASE_URL named", err)
	}
}

func TestLifecycleIsReadyWhileTheDatabaseAnswersAndStopCloses(t *testing.T) {
	ctx := context.Background()
	var l db.Lifecycle[db.Database, *db.Database]
	if ok, _ := l.Ready(ctx); ok {
		t.Fatal("ready without a pool")
	}
	pool, err := db.OpenFromEnv(ctx, config.FromMap(map[string]string{"DATABASE_URL": testenv.Database(t)}))
	if err != nil {
		t.Fatal(err)
	}
	l.Backend = &db.Database{Pool: pool}
	if ok, err := l.Ready(ctx); !ok || err != nil {
		t.Fatalf("Ready = %v, %v with the database up", ok, err)
	}
	if err := l.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := l.Ready(ctx); ok {
		t.Fatal("ready after Stop closed the pool")
	}
}

func TestLifecycleStartNamesTheBadSettingAndLeavesNoBackend(t *testing.T) {
	ctx := context.Background()
	var l db.Lifecycle[db.Database, *db.Database]
	if err := l.Start(ctx, map[string]string{}); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("Start without DATABASE_URL = %v", err)
	}
	if l.Backend != nil {
		t.Fatal("a backend after a failed Start")
	}
	if ok, _ := l.Ready(ctx); ok {
		t.Fatal("ready after a failed Start")
	}
	if err := l.Stop(ctx); err != nil {
		t.Fatalf("Stop after a failed Start: %v", err)
	}
}
