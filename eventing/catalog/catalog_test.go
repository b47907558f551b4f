package catalog

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

func TestEverySchemaCompilesAndIsNamedAfterItsType(t *testing.T) {
	types, err := Types()
	if err != nil {
		t.Fatal(err)
	}
	if len(types) == 0 {
		t.Fatal("the catalog is empty")
	}
	for _, typ := range types {
		raw, err := os.ReadFile(filepath.Join(".", typ+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Title      string `json:"title"`
			Properties struct {
				Type struct {
					Const string `json:"const"`
				} `json:"type"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Title != typ || doc.Properties.Type.Const != typ || !strings.HasPrefix(typ, "com.skyflow.") {
			t.Errorf("%s.json: title %q and type const %q must both be the file's type, under com.skyflow.", typ, doc.Title, doc.Properties.Type.Const)
		}
	}
}

func recorded(data map[string]any) event.Event {
	e := event.New()
	e.SetID("0b8e3f5e-5d56-5f5a-9e0e-6d7f9c1c2a10")
	e.SetSource("/skyflow/functions/dead-letters")
	e.SetType("com.skyflow.eventing.deadletter.recorded")
	e.SetSubject("com.skyflow.vault.record.created")
	e.SetData(event.ApplicationJSON, data)
	return e
}

func TestValidateAcceptsConformingEventsAndRejectsOthers(t *testing.T) {
	good := recorded(map[string]any{"source": "/x", "id": "1", "type": "com.skyflow.vault.record.created", "status": 503})
	if err := Validate(good); err != nil {
		t.Fatalf("a conforming event was refused: %v", err)
	}
	for name, e := range map[string]event.Event{
		"extra data field (values must never ride along)": recorded(map[string]any{"source": "/x", "id": "1", "type": "t", "value": "4111111111111111"}),
		"missing id in data":                              recorded(map[string]any{"source": "/x", "type": "t"}),
		"status out of range":                             recorded(map[string]any{"source": "/x", "id": "1", "type": "t", "status": 42}),
	} {
		if err := Validate(e); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	unknown := good.Clone()
	unknown.SetType("com.skyflow.nobody.emits.this")
	if err := Validate(unknown); err == nil || !strings.Contains(err.Error(), "not in the catalog") {
		t.Errorf("unknown type: %v", err)
	}
}
