package tests

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// clinicSchema has two data_subject tables and a policy for the
// administrator's key.
const clinicSchema = `{"name": "clinic",
 "tables": [
  {"name": "patients", "columns": [
    {"name": "patient_id", "data_type": "string", "data_subject": true, "unique": true},
    {"name": "name", "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"}]},
  {"name": "visits", "columns": [
    {"name": "patient", "data_type": "string", "data_subject": true},
    {"name": "note", "data_type": "string"}]}],
 "policy": {"roles": {
   "admin": {"tables": {"*": {"insert": true, "update": true, "delete": true, "read": {"*": "PLAIN_TEXT"}}}, "detokenize": true}}}}`

// Forgetting a data subject through the gateway: the subject's records go
// in every table, the other subject's stay, the epoch key file that
// wrapped the subject's key is gone from the vault key store, a backup's
// rows restored afterwards do not open, and the audit log records the
// forget and its shredding without the subject's identifier.
func TestForgetDataSubjectEndToEnd(t *testing.T) {
	p := startPlatform(t, options{})
	pool, err := pgxpool.New(context.Background(), p.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx := context.Background()
	gw := &gatewayClient{base: p.GatewayURL(), client: &http.Client{Timeout: time.Minute}}
	key := p.AdminAPIKey()
	var v struct {
		ID string `json:"id"`
	}
	gw.want(t, 200, "POST", "/v1/management/vaults", key, json.RawMessage(clinicSchema), &v)

	insert := func(table string, fields map[string]any) string {
		var res struct {
			Records []struct {
				SkyflowID string `json:"skyflow_id"`
			} `json:"records"`
		}
		gw.want(t, 200, "POST", "/v1/vaults/"+v.ID+"/"+table, key, map[string]any{"records": []any{map[string]any{"fields": fields}}}, &res)
		return res.Records[0].SkyflowID
	}
	alice := insert("patients", map[string]any{"patient_id": "p-alice-8812", "name": "Alice Liddell"})
	aliceVisit := insert("visits", map[string]any{"patient": "p-alice-8812", "note": "sprained ankle"})
	bob := insert("patients", map[string]any{"patient_id": "p-bob-4410", "name": "Bob Stone"})

	// The "backup": alice's rows as the database holds them now.
	var backupCells [][]any
	backupKey := scanRow(t, pool, `SELECT k.id, k.vault_id, k.subject_index, k.wrapped, k.epoch FROM vault_subject_keys k JOIN vault_records r ON r.subject_key = k.id WHERE r.id = $1`, alice)
	backupEpoch := scanRow(t, pool, `SELECT vault_id, epoch, wrapped FROM vault_subject_epochs WHERE epoch = $1`, backupKey[4])
	backupRecord := scanRow(t, pool, `SELECT vault_id, id, table_name, subject_key FROM vault_records WHERE id = $1`, alice)
	rows, err := pool.Query(ctx, `SELECT vault_id, record_id, column_name, table_name, ciphertext, blind_index, unique_index, token FROM vault_cells WHERE record_id = $1`, alice)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		backupCells = append(backupCells, vals)
	}
	rows.Close()

	keyFile := func(epoch int) string {
		return filepath.Join(p.cfg.DevDir, "vault-keys", v.ID+"-s"+strconv.Itoa(epoch)+".key")
	}
	if _, err := os.Stat(keyFile(1)); err != nil {
		t.Fatalf("epoch 1's key file: %v", err)
	}

	var forgot struct {
		ForgetID        string         `json:"forget_id"`
		RecordsDeleted  int            `json:"records_deleted"`
		Tables          map[string]int `json:"tables"`
		CryptoShredding string         `json:"crypto_shredding"`
	}
	a := gw.want(t, 200, "POST", "/v1/vaults/"+v.ID+"/subjects/forget", key, map[string]any{"subject": "p-alice-8812"}, &forgot)
	if forgot.RecordsDeleted != 2 || forgot.Tables["patients"] != 1 || forgot.Tables["visits"] != 1 || forgot.CryptoShredding != "done" {
		t.Fatalf("forget answered %s", a.body)
	}
	if strings.Contains(string(a.body), "p-alice") {
		t.Fatalf("the answer repeats the subject: %s", a.body)
	}
	gw.want(t, 404, "GET", "/v1/vaults/"+v.ID+"/patients/"+alice, key, nil, nil)
	gw.want(t, 404, "GET", "/v1/vaults/"+v.ID+"/visits/"+aliceVisit, key, nil, nil)
	var got struct {
		Fields map[string]any `json:"fields"`
	}
	gw.want(t, 200, "GET", "/v1/vaults/"+v.ID+"/patients/"+bob+"?redaction=PLAIN_TEXT", key, nil, &got)
	if got.Fields["name"] != "Bob Stone" {
		t.Fatalf("bob after alice's forget: %v", got.Fields)
	}
	if _, err := os.Stat(keyFile(1)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("epoch 1's key file after the forget: %v, want gone", err)
	}
	if _, err := os.Stat(keyFile(2)); err != nil {
		t.Fatalf("epoch 2's key file: %v", err)
	}
	var keys struct {
		Subjects struct {
			Epoch          int `json:"epoch"`
			Keys           int `json:"keys"`
			PendingForgets int `json:"pending_forgets"`
		} `json:"subjects"`
	}
	gw.want(t, 200, "GET", "/v1/management/vaults/"+v.ID+"/keys", key, nil, &keys)
	if keys.Subjects.Epoch != 2 || keys.Subjects.Keys != 1 || keys.Subjects.PendingForgets != 0 {
		t.Fatalf("GET …/keys subjects: %+v", keys.Subjects)
	}

	// Restore the backup's rows, as restoring the database would, and read.
	exec := func(sql string, args ...any) {
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("restore: %v", err)
		}
	}
	exec(`UPDATE vault_subject_epochs SET wrapped = $3, destroyed_at = NULL WHERE vault_id = $1 AND epoch = $2`, backupEpoch...)
	exec(`INSERT INTO vault_subject_keys (id, vault_id, subject_index, wrapped, epoch) VALUES ($1, $2, $3, $4, $5)`, backupKey...)
	exec(`INSERT INTO vault_records (vault_id, id, table_name, subject_key) VALUES ($1, $2, $3, $4)`, backupRecord...)
	for _, c := range backupCells {
		exec(`INSERT INTO vault_cells (vault_id, record_id, column_name, table_name, ciphertext, blind_index, unique_index, token) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, c...)
	}
	a = gw.do(t, "GET", "/v1/vaults/"+v.ID+"/patients/"+alice+"?redaction=PLAIN_TEXT", key, nil)
	if a.status != 500 || strings.Contains(string(a.body), "Alice") {
		t.Fatalf("the restored backup of alice's record: %d %s, want 500 and no value", a.status, a.body)
	}

	// The audit log: the forget (with its records), then its shredding.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var forgotten, shredded int
		var leaked bool
		err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE event_type = 'com.skyflow.vault.subject.forgotten'),
			count(*) FILTER (WHERE event_type = 'com.skyflow.vault.subject.shredded'),
			coalesce(bool_or(entry::text LIKE '%p-alice%'), false)
			FROM audit_log WHERE vault_id = $1`, v.ID).Scan(&forgotten, &shredded, &leaked)
		if err != nil {
			t.Fatal(err)
		}
		if leaked {
			t.Fatal("the audit log holds the forgotten subject's identifier")
		}
		if forgotten == 1 && shredded == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit log: %d forgotten and %d shredded events, want 1 each", forgotten, shredded)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scanRow reads one row's values.
func scanRow(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []any {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("no row for %s", sql)
	}
	vals, err := rows.Values()
	if err != nil {
		t.Fatal(err)
	}
	return vals
}
