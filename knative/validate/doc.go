// Package validate checks the rendered Knative manifests (kubectl kustomize
// of knative/overlays/dev and prod) with Knative's own defaulting and
// validation code, and checks that they agree with every functions/*/func.yaml.
//
// It is a separate module so that Knative's dependencies stay out of the
// main module: run it with `cd knative/validate && go test ./...`.
package validate
