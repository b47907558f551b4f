package db_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

const secret = "s3cretPW"

func TestOpenBadURLErrorNeverContainsPassword(t *testing.T) {
	bad := []string{
		"postgres://app:" + secret + "@db:notaport/vault",
		"postgres://app:" + secret + "/x@db/vault",  // unescaped slash in the password
		"postgres://app:" + secret + "%zz@db/vault", // bad percent escape
		"postgres://app:" + secret + "@db/vault?pool_max_conns=lots",
		"postgres://app:" + secret + "@db/vault?connect_timeout=soon",
		"postgres://app@db/vault?password=" + secret + "&sslmode=bogus",
		"host=db user=app password=" + secret + " pool_max_conns=lots",
		"host=db user=app password='" + secret + " x' sslmode=bogus",
		"host=db user=app password=" + secret + " port",
	}
	for _, url := range bad {
		_, err := db.Open(context.Background(), url)
		if err == nil {
			t.Errorf("Open(%q) succeeded, want an error", url)
			continue
		}
		for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			if strings.Contains(text, secret) {
				t.Errorf("Open error quotes the password: %s", text)
			}
		}
		if !errors.Is(err, db.ErrInvalidURL) {
			t.Errorf("Open(%q) error %v does not wrap ErrInvalidURL", url, err)
		}
		t.Logf("%s", err)
	}
}

func TestOpenBadURLErrorSaysWhatIsWrong(t *testing.T) {
	_, err := db.Open(context.Background(), "postgres://app:"+secret+"@db/vault?pool_max_conns=lots")
	if err == nil || !strings.Contains(err.Error(), "pool_max_conns") || !strings.Contains(err.Error(), "postgres://app:xxxxx@db/vault") {
		t.Errorf("error = %v, want the redacted URL and the bad parameter named", err)
	}
}

func TestOpenIsLazy(t *testing.T) {
	// Nothing listens on port 1: a connecting Open would fail.
	start := time.Now()
	pool, err := db.Open(context.Background(), "postgres://app:pw@127.0.0.1:1/vault?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer pool.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Open took %v, want no network wait", d)
	}
	if n := pool.Stat().TotalConns(); n != 0 {
		t.Errorf("Open made %d connections, want 0", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.Ping(ctx, pool); err == nil {
		t.Error("Ping of an unreachable server succeeded")
	}
}

func TestPingConnectsToARealServer(t *testing.T) {
	pool, err := db.Open(context.Background(), testenv.Database(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.Ping(ctx, pool); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if n := pool.Stat().TotalConns(); n != 1 {
		t.Errorf("after Ping the pool has %d connections, want 1", n)
	}
}

func TestPoolSettings(t *testing.T) {
	const base = "postgres://app:pw@db/vault"
	tests := []struct {
		name         string
		url          string
		opts         []db.Option
		max, min     int32
		idle, health time.Duration
	}{
		{"defaults", base, nil, db.DefaultMaxConns, 0, db.DefaultMaxConnIdleTime, db.DefaultHealthCheckPeriod},
		{"options", base, []db.Option{db.WithMaxConns(8), db.WithMinConns(1), db.WithMaxConnIdleTime(time.Minute), db.WithHealthCheckPeriod(time.Second)}, 8, 1, time.Minute, time.Second},
		{"URL wins over options", base + "?pool_max_conns=2&pool_max_conn_idle_time=5s", []db.Option{db.WithMaxConns(8)}, 2, 0, 5 * time.Second, db.DefaultHealthCheckPeriod},
		{"keyword/value URL", "host=db user=app pool_max_conns=3 pool_min_conns=1", nil, 3, 1, db.DefaultMaxConnIdleTime, db.DefaultHealthCheckPeriod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := db.ParseConfig(tt.url, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MaxConns != tt.max || cfg.MinConns != tt.min || cfg.MaxConnIdleTime != tt.idle || cfg.HealthCheckPeriod != tt.health {
				t.Errorf("got max %d min %d idle %v health %v, want %d %d %v %v",
					cfg.MaxConns, cfg.MinConns, cfg.MaxConnIdleTime, cfg.HealthCheckPeriod, tt.max, tt.min, tt.idle, tt.health)
			}
			if cfg.ConnConfig.ConnectTimeout != db.DefaultConnectTimeout {
				t.Errorf("connect timeout %v, want %v", cfg.ConnConfig.ConnectTimeout, db.DefaultConnectTimeout)
			}
		})
	}
}

func TestParseConfigRejectsBadOptions(t *testing.T) {
	for _, opts := range [][]db.Option{{db.WithMaxConns(0)}, {db.WithMinConns(db.DefaultMaxConns + 1)}, {db.WithMinConns(-1)}} {
		if _, err := db.ParseConfig("postgres://db/vault", opts...); err == nil {
			t.Error("ParseConfig accepted an impossible pool size")
		}
	}
}
