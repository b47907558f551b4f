package records

import "encoding/json"

// The Data API's request and response bodies, field for field as the
// Skyflow Data API v1 spells them (docs/API.md): existing
// Skyflow SDKs send and read exactly these.

// MaxItems is the most records, tokens or values one request may carry.
const MaxItems = 25

// Fields is one record's column values as sent.
type Fields map[string]json.RawMessage

// InsertRequest is POST /v1/vaults/{vaultID}/{table}.
type InsertRequest struct {
	Records      []RecordFields `json:"records"`
	Tokenization bool           `json:"tokenization"`
	Upsert       string         `json:"upsert"`
	// Sent by Skyflow SDKs; accepted for compatibility. Homogeneous makes
	// no difference here, and BYOT (bring your own tokens) is not offered.
	Homogeneous bool   `json:"homogeneous"`
	BYOT        string `json:"byot"`
}

// RecordFields wraps a record's fields, as the API nests them.
type RecordFields struct {
	Fields Fields `json:"fields"`
}

// InsertResponse answers an insert.
type InsertResponse struct {
	Records []Inserted `json:"records"`
}

// Inserted is one inserted (or, with upsert, updated) record.
type Inserted struct {
	SkyflowID string            `json:"skyflow_id"`
	Tokens    map[string]string `json:"tokens,omitempty"`
}

// GetResponse answers a get by ids or column values, and a query.
type GetResponse struct {
	Records []Record `json:"records"`
}

// Record is one record as read: its fields (values, masked or redacted
// values, or tokens) and skyflow_id among them. Tokens is always null, as
// in the Skyflow API.
type Record struct {
	Fields map[string]json.RawMessage `json:"fields"`
	Tokens map[string]string          `json:"tokens"`
}

// UpdateRequest is PUT /v1/vaults/{vaultID}/{table}/{skyflow_id}.
type UpdateRequest struct {
	Record       RecordFields `json:"record"`
	Tokenization bool         `json:"tokenization"`
	BYOT         string       `json:"byot"`
}

// UpdateResponse answers an update.
type UpdateResponse struct {
	SkyflowID string            `json:"skyflow_id"`
	Tokens    map[string]string `json:"tokens"`
}

// DeleteResponse answers a delete of one record.
type DeleteResponse struct {
	SkyflowID string `json:"skyflow_id"`
	Deleted   bool   `json:"deleted"`
}

// DeleteManyRequest is DELETE /v1/vaults/{vaultID}/{table}.
type DeleteManyRequest struct {
	SkyflowIDs []string `json:"skyflow_ids"`
}

// DeleteManyResponse answers a delete of many records.
type DeleteManyResponse struct {
	RecordIDResponse []string `json:"RecordIDResponse"`
}

// DetokenizeRequest is POST /v1/vaults/{vaultID}/detokenize.
type DetokenizeRequest struct {
	Parameters      []DetokenizeParameter `json:"detokenizationParameters"`
	ContinueOnError bool                  `json:"continueOnError"`
	DownloadURL     bool                  `json:"downloadURL"` // accepted for SDK compatibility; there are no files to download
}

// DetokenizeParameter is one token to turn back into its value.
type DetokenizeParameter struct {
	Token     string `json:"token"`
	Redaction string `json:"redaction"`
}

// DetokenizeResponse answers a detokenize.
type DetokenizeResponse struct {
	Records []Detokenized `json:"records"`
}

// Detokenized is one token's value, or its error with valueType NONE.
type Detokenized struct {
	Token     string  `json:"token"`
	ValueType string  `json:"valueType"`
	Value     string  `json:"value"`
	Error     *string `json:"error"`
}

// TokenizeRequest is POST /v1/vaults/{vaultID}/tokenize.
type TokenizeRequest struct {
	Parameters []TokenizeParameter `json:"tokenizationParameters"`
}

// TokenizeParameter is one value whose deterministic token is wanted.
type TokenizeParameter struct {
	Value       json.RawMessage `json:"value"`
	ColumnGroup string          `json:"columnGroup"`
}

// TokenizeResponse answers a tokenize.
type TokenizeResponse struct {
	Records []Token `json:"records"`
}

// Token is one token.
type Token struct {
	Token string `json:"token"`
}

// QueryRequest is POST /v1/vaults/{vaultID}/query.
type QueryRequest struct {
	Query string `json:"query"`
}

// BatchRequest is POST /v1/vaults/{vaultID}.
type BatchRequest struct {
	Records         []BatchRecord `json:"records"`
	ContinueOnError bool          `json:"continueOnError"`
	BYOT            string        `json:"byot"`
}

// BatchRecord is one operation of a batch.
type BatchRecord struct {
	TableName    string `json:"tableName"`
	Method       string `json:"method"`
	Fields       Fields `json:"fields"`
	ID           string `json:"ID"`
	Redaction    string `json:"redaction"`
	Tokenization bool   `json:"tokenization"`
	Upsert       string `json:"upsert"`
	BatchID      string `json:"batchID"`
	// Sent by Skyflow SDKs (quorum: true on every insert); accepted for
	// compatibility: every write here is committed before the answer.
	Quorum bool `json:"quorum"`
}

// BatchResponse answers a batch. With continueOnError each response is a
// BatchItem (Body and Status); without, each is the operation's own body.
type BatchResponse struct {
	VaultID   string `json:"vaultID"`
	Responses []any  `json:"responses"`
}

// BatchItem is one operation's answer in a continueOnError batch.
type BatchItem struct {
	Body   any `json:"Body"`
	Status int `json:"Status"`
}

// BatchError is the Body of a failed operation in a continueOnError batch.
type BatchError struct {
	Error string `json:"error"`
}
