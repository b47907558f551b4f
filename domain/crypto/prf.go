package crypto

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// PRFSize is the length of BlindIndex and TokenSeed outputs.
const PRFSize = 32

// BlindIndex returns a keyed 32-byte digest of a canonical value in
// table.column, for equality lookups without decrypting. The input is
// length-prefixed and labelled "index", so digests never collide across
// columns or with [Keys.TokenSeed].
func (k *Keys) BlindIndex(table, column string, canonical []byte) ([]byte, error) {
	return k.compute("blind index", indexInput(table, column, canonical))
}

// BlindIndexes returns the value's blind index under every index key, the
// primary's first. After a rotation, rows not yet re-indexed carry an
// older key's index; lookups and uniqueness checks match any of these.
// Once the older keys are destroyed it is just [Keys.BlindIndex].
func (k *Keys) BlindIndexes(table, column string, canonical []byte) ([][]byte, error) {
	_, p := k.snapshot()
	in := indexInput(table, column, canonical)
	primary, err := p.ComputePrimaryPRF(in, PRFSize)
	if err != nil {
		return nil, fmt.Errorf("crypto: blind index: %w", err)
	}
	out := [][]byte{primary}
	for id, f := range p.PRFs {
		if id == p.PrimaryID {
			continue
		}
		idx, err := f.ComputePRF(in, PRFSize)
		if err != nil {
			return nil, fmt.Errorf("crypto: blind index: %w", err)
		}
		out = append(out, idx)
	}
	return out, nil
}

func indexInput(table, column string, canonical []byte) []byte {
	in := appendField(nil, "skyflow/index/v1")
	in = appendField(in, table)
	in = appendField(in, column)
	return appendField(in, canonical)
}

// TokenSeed returns a keyed 32-byte seed for a deterministic token of a
// canonical value in a column group. attempt (≥ 0) selects an independent
// seed, so a caller whose token collides can derive another.
func (k *Keys) TokenSeed(group string, canonical []byte, attempt int) ([]byte, error) {
	if attempt < 0 {
		return nil, errors.New("crypto: token seed: negative attempt")
	}
	in := appendField(nil, "skyflow/token/v1")
	in = appendField(in, group)
	in = appendField(in, binary.BigEndian.AppendUint64(nil, uint64(attempt)))
	in = appendField(in, canonical)
	return k.compute("token seed", in)
}

func (k *Keys) compute(what string, in []byte) ([]byte, error) {
	_, p := k.snapshot()
	out, err := p.ComputePrimaryPRF(in, PRFSize)
	if err != nil {
		return nil, fmt.Errorf("crypto: %s: %w", what, err)
	}
	return out, nil
}
