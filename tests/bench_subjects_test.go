package tests

// BenchmarkForget measures data subjects on the vault service itself
// (domain/records on a real PostgreSQL, local vault key store), each figure
// against a baseline measured in the same run:
//
//   - forget: forgetting one subject of a vault of forgetSubjects subjects
//     (one record each), which deletes the record and then rewraps every
//     other subject's key under a new epoch key and destroys the old one;
//     against deleting one record of the same vault by id (the baseline).
//     subject-keys/s is the other subjects' keys rewrapped per second of a
//     forget's p50.
//   - read: getting one record of a data_subject table by id (its values
//     under two layers: the subject's key, then the vault's) against
//     getting one record of an otherwise identical table without a
//     data_subject column.
//
// The measurement runs once per test process whatever b.N; ns/op is
// suppressed.

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

const (
	forgetSubjects = 5000
	forgetSamples  = 20
	readSamples    = 400
)

const forgetBenchSchema = `{"name": "forget bench",
 "tables": [
  {"name": "people", "columns": [
    {"name": "person_id", "data_type": "string", "data_subject": true},
    {"name": "name", "data_type": "string"}, {"name": "email", "data_type": "string"}]},
  {"name": "plain", "columns": [
    {"name": "person_id", "data_type": "string"},
    {"name": "name", "data_type": "string"}, {"name": "email", "data_type": "string"}]}],
 "policy": {"roles": {"owner": {"tables": {"*": {"insert": true, "delete": true, "read": {"*": "PLAIN_TEXT"}}}}}}}`

var forgetBench struct {
	once                   sync.Once
	forget, deletes        []time.Duration
	subjectRead, plainRead []time.Duration
	err                    error
}

func BenchmarkForget(b *testing.B) {
	forgetBench.once.Do(func() { forgetBench.err = measureForget(b) })
	if forgetBench.err != nil {
		b.Fatal(forgetBench.err)
	}
	b.Run("forget", func(b *testing.B) {
		reportLatencies(b, forgetBench.forget, forgetBench.deletes, "forget/delete-p50")
		b.ReportMetric(float64(forgetSubjects)/(percentile(forgetBench.forget, 0.5)/1000), "subject-keys/s")
	})
	b.Run("read", func(b *testing.B) {
		reportLatencies(b, forgetBench.subjectRead, forgetBench.plainRead, "subject/plain-p50")
	})
}

func measureForget(b *testing.B) error {
	ctx := context.Background()
	pool := testenv.Pool(b)
	master := make([]byte, 32)
	rand.Read(master)
	k, err := kek.NewLocal(master)
	if err != nil {
		return err
	}
	vk, err := kek.NewDirVaultKeys(b.TempDir())
	if err != nil {
		return err
	}
	sink := testenv.NewSink(b)
	pub, err := outbox.NewPublisher(pool, sink.URL, outbox.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		return err
	}
	backend := &vaults.Backend{Pool: pool, Vaults: vaults.NewStore(pool, k).WithVaultKeys(vk), Publisher: pub}
	admin := request.Principal{ID: "user:admin", Roles: []string{"admin"}}
	owner := request.Principal{ID: "sa:owner", Roles: []string{"owner"}}
	v, err := vaults.NewManager(backend, "/bench/vaults").Create(ctx, admin, []byte(forgetBenchSchema))
	if err != nil {
		return err
	}
	svc := records.New(backend, "/bench/records")

	// forgetSubjects subjects, and as many plain records, 25 a request.
	ids := map[string][]string{}
	for _, table := range []string{"people", "plain"} {
		for start := 0; start < forgetSubjects; start += records.MaxItems {
			var recs []records.RecordFields
			for i := start; i < min(forgetSubjects, start+records.MaxItems); i++ {
				recs = append(recs, records.RecordFields{Fields: records.Fields{
					"person_id": []byte(fmt.Sprintf(`"p-%06d"`, i)), "name": []byte(`"Ada Lovelace"`), "email": []byte(`"ada@example.com"`)}})
			}
			res, err := svc.Insert(ctx, owner, v.ID, table, records.InsertRequest{Records: recs})
			if err != nil {
				return err
			}
			for _, r := range res.Records {
				ids[table] = append(ids[table], r.SkyflowID)
			}
		}
	}
	timed := func(f func() error) (time.Duration, error) {
		start := time.Now()
		err := f()
		return time.Since(start), err
	}
	// Reads alternate, so that both see the same machine.
	for i := range readSamples {
		for _, table := range []string{"people", "plain"} {
			d, err := timed(func() error {
				_, err := svc.GetOne(ctx, owner, v.ID, table, ids[table][i%forgetSubjects], records.GetParams{Redaction: "PLAIN_TEXT"})
				return err
			})
			if err != nil {
				return err
			}
			if table == "people" {
				forgetBench.subjectRead = append(forgetBench.subjectRead, d)
			} else {
				forgetBench.plainRead = append(forgetBench.plainRead, d)
			}
		}
	}
	for i := range forgetSamples {
		d, err := timed(func() error {
			_, err := svc.Delete(ctx, owner, v.ID, "plain", ids["plain"][i])
			return err
		})
		if err != nil {
			return err
		}
		forgetBench.deletes = append(forgetBench.deletes, d)
		d, err = timed(func() error {
			res, err := svc.Forget(ctx, owner, v.ID, records.ForgetRequest{Subject: fmt.Sprintf("p-%06d", i)}, time.Minute)
			if err == nil && res.CryptoShredding != records.ShredDone {
				err = fmt.Errorf("forget %d: crypto_shredding %s", i, res.CryptoShredding)
			}
			return err
		})
		if err != nil {
			return err
		}
		forgetBench.forget = append(forgetBench.forget, d)
	}
	return nil
}
