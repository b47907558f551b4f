package routes

import (
	"encoding/json"
	"strings"
)

// OpenAPI describes the routes as an OpenAPI 3.1 document, served at
// GET /openapi.json: generated from the route table, so it cannot drift.
func OpenAPI(routes []*Route) []byte {
	errorResponse := map[string]any{"description": "An error, in the API's envelope.",
		"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}
	paths := map[string]map[string]any{}
	for _, r := range routes {
		op := map[string]any{
			"operationId": r.Function,
			"summary":     r.Type,
			"tags":        []string{r.Class},
			"responses": map[string]any{
				"200":     map[string]any{"description": "The function's answer.", "content": map[string]any{"application/json": map[string]any{}}},
				"default": errorResponse,
			},
		}
		if r.Function == "" {
			op["operationId"] = "openapi"
			op["summary"] = "This document."
		}
		if r.Anonymous() {
			op["security"] = []any{}
		}
		if len(r.Roles) > 0 {
			op["description"] = "Needs one of the roles: " + strings.Join(r.Roles, ", ") + "."
		}
		var params []any
		for _, segment := range strings.Split(r.Path, "/") {
			if name, ok := strings.CutPrefix(segment, "{"); ok {
				params = append(params, map[string]any{"name": strings.TrimSuffix(name, "}"), "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
			}
		}
		if params != nil {
			op["parameters"] = params
		}
		if r.Method != "GET" && r.Method != "DELETE" {
			op["requestBody"] = map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
		}
		if paths[r.Path] == nil {
			paths[r.Path] = map[string]any{}
		}
		paths[r.Path][strings.ToLower(r.Method)] = op
	}
	doc := map[string]any{
		"openapi":  "3.1.0",
		"info":     map[string]any{"title": "Skyflow", "version": "v1", "description": "The Skyflow data privacy vault. The Data API is wire-compatible with the Skyflow Data API v1."},
		"paths":    paths,
		"security": []any{map[string]any{"bearer": []string{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "An access token (JWT) or an API key (sky-…)."}},
			"schemas": map[string]any{"Error": map[string]any{"type": "object", "required": []string{"error"}, "properties": map[string]any{
				"error": map[string]any{"type": "object", "properties": map[string]any{
					"grpc_code": map[string]any{"type": "integer"}, "http_code": map[string]any{"type": "integer"},
					"http_status": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"},
					"details": map[string]any{"type": "array"}}}}}},
		},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err) // maps of strings always encode
	}
	return b
}
