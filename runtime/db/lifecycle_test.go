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
	var l db.Lifecycle
	if ok, _ := l.Ready(ctx); ok {
		t.Fatal("ready without a pool")
	}
	pool, err := db.OpenFromEnv(ctx, config.FromMap(map[string]string{"DATABASE_URL": testenv.Database(t)}))
	if err != nil {
		t.Fatal(err)
	}
	l.Pool = pool
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
