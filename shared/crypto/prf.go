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
	in := appendField(nil, "skyflow/index/v1")
	in = appendField(in, table)
	in = appendField(in, column)
	in = appendField(in, canonical)
	return k.compute("blind index", in)
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
