// Package shredding is crypto-shredding: making data unreadable
// everywhere, backups included, by destroying the only key that opens it.
// A deleted vault's own key is destroyed after its rows are gone
// (DeleteVault, FinishShreds); a forgotten data subject's key, still in
// every backup, is shredded by ending the vault's subject epoch that
// wrapped it (ShredSubjects, FinishSubjectShreds). Writers and readers of
// data_subject tables get the subjects' keys here (SubjectKeyFor,
// SubjectKeys).
//
// It builds on the registry (domain/vaults) and the keys at rest
// (domain/keys): what it destroys are the outside keys the keyring holds.
package shredding

import (
	"github.com/skyflow-oss/skyflow/domain/vaults"
)

// Shredder carries out crypto-shredding for one function: its events
// come from Source.
type Shredder struct {
	*vaults.Backend
	Source string
}

// New returns a Shredder on b whose events come from source.
func New(b *vaults.Backend, source string) *Shredder { return &Shredder{Backend: b, Source: source} }
