// Package passwords hashes and checks the passwords of user accounts.
//
// Hashes are argon2id in the PHC string format,
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// (salt and key in unpadded standard base64), so each hash carries the cost
// it was made with: [Default] can be raised without invalidating stored
// hashes, and [Verify] says when a hash should be remade with it.
//
// Argon2id is memory-hard on purpose, which makes it a denial-of-service
// lever: a password is bounded to [MaxLength] bytes before it is hashed, a
// stored hash is parsed with bounds on its cost (a tampered hash cannot ask
// for gigabytes), and at most GOMAXPROCS hashes are computed at once in a
// process, so its memory for hashing is bounded by GOMAXPROCS × m (the
// functions run in 128 MiB containers). More would not be faster anyway:
// with p=1 each hash keeps one core busy.
package passwords

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// Params are argon2id's cost parameters. They are written into every hash,
// so they can change without invalidating stored hashes.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes (parallelism)
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// Default is the cost of new hashes: OWASP's first argon2id recommendation
// (m=19 MiB, t=2, p=1), which OWASP rates as strong as its alternatives
// trading memory for passes. Measured on the development machine (AMD EPYC,
// 2 vCPUs, shared) a hash takes 25–35 ms of one core and 19 MiB
// (BenchmarkHash, BenchmarkVerify), so a login stays well under 100 ms even
// at the functions' 0.5 CPU limit. RFC 9106's 64 MiB option (t=3, p=4)
// measured 100–150 ms and needs 64 MiB per login, too much for a 128 MiB
// container answering two logins at once; raise Default when the
// containers grow (stored hashes keep working and are remade at login).
// A 128-bit salt and a 256-bit key are the RFC's recommendation.
var Default = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

const (
	// MinLength is the fewest characters (Unicode code points) a new
	// password may have.
	MinLength = 12
	// MaxLength is the most bytes a password may have. It bounds the work
	// before hashing; 256 bytes is far beyond any passphrase people type.
	MaxLength = 256
)

// Bounds on the cost a hash may ask for, for hashes made and hashes
// verified: a tampered or corrupt hash must not make a login allocate
// gigabytes or loop for minutes. They leave room to raise Default to
// RFC 9106's 64 MiB option.
const (
	maxMemory  = 64 * 1024 // KiB
	maxTime    = 8
	maxThreads = 8
	minSalt    = 8
	maxSalt    = 64
	minKey     = 16
	maxKey     = 64
	// maxEncoded bounds the encoded hash before it is parsed; the longest
	// well-formed one within the bounds above is about 200 bytes.
	maxEncoded = 256
)

// ErrMalformed is returned by Verify for a stored hash it cannot read or
// whose cost is outside the accepted bounds. Such a hash is corrupt or
// tampered with: the caller answers with an internal error, not "wrong
// password".
var ErrMalformed = errors.New("passwords: malformed hash")

// tooLong is the error for a password over MaxLength.
func tooLong() error {
	return apierr.InvalidArgument("The password is too long: use at most %d bytes (%d plain ASCII characters).", MaxLength, MaxLength)
}

// slots bounds the number of argon2 computations running at once; see the
// package comment.
var slots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))

func idKey(password, salt []byte, p Params) []byte {
	slots <- struct{}{}
	defer func() { <-slots }()
	return argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}

// validate reports whether p is within the accepted bounds.
func (p Params) validate() error {
	switch {
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("threads %d outside [1, %d]", p.Threads, maxThreads)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("time %d outside [1, %d]", p.Time, maxTime)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		// argon2 needs 8 KiB per lane.
		return fmt.Errorf("memory %d KiB outside [%d, %d]", p.Memory, 8*uint32(p.Threads), maxMemory)
	case p.SaltLen < minSalt || p.SaltLen > maxSalt:
		return fmt.Errorf("salt length %d outside [%d, %d]", p.SaltLen, minSalt, maxSalt)
	case p.KeyLen < minKey || p.KeyLen > maxKey:
		return fmt.Errorf("key length %d outside [%d, %d]", p.KeyLen, minKey, maxKey)
	}
	return nil
}

// Hash hashes password with p and a random salt and returns the PHC string.
// It does not apply the rules of Check, which the caller applies to a new
// password; it does refuse a password over MaxLength (an *apierr.Error).
func Hash(password string, p Params) (string, error) {
	if len(password) > MaxLength {
		return "", tooLong()
	}
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("passwords: invalid params: %w", err)
	}
	salt := make([]byte, p.SaltLen)
	rand.Read(salt) // never fails: crashes the program rather than return weak bytes
	return encode(p, salt, idKey([]byte(password), salt, p)), nil
}

var b64 = base64.RawStdEncoding.Strict()

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses a PHC string strictly: one spelling per hash, every number
// in canonical decimal and every cost within bounds.
func decode(encoded string) (p Params, salt, key []byte, err error) {
	if len(encoded) > maxEncoded {
		return Params{}, nil, nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxEncoded)
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return Params{}, nil, nil, fmt.Errorf("%w: not a PHC string", ErrMalformed)
	}
	if parts[1] != "argon2id" {
		return Params{}, nil, nil, fmt.Errorf("%w: not argon2id", ErrMalformed)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Params{}, nil, nil, fmt.Errorf("%w: unsupported version", ErrMalformed)
	}
	var m, t, th uint64
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return Params{}, nil, nil, fmt.Errorf("%w: want parameters m, t and p", ErrMalformed)
	}
	for i, f := range []struct {
		name string
		dst  *uint64
		bits int
	}{{"m=", &m, 32}, {"t=", &t, 32}, {"p=", &th, 8}} {
		digits, ok := strings.CutPrefix(fields[i], f.name)
		if !ok {
			return Params{}, nil, nil, fmt.Errorf("%w: want parameters m, t and p", ErrMalformed)
		}
		v, perr := strconv.ParseUint(digits, 10, f.bits)
		if perr != nil || strconv.FormatUint(v, 10) != digits {
			return Params{}, nil, nil, fmt.Errorf("%w: parameter %s is not a number in range", ErrMalformed, strings.TrimSuffix(f.name, "="))
		}
		*f.dst = v
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: salt is not base64", ErrMalformed)
	}
	if key, err = b64.DecodeString(parts[5]); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: key is not base64", ErrMalformed)
	}
	p = Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(th), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if err := p.validate(); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return p, salt, key, nil
}

// Verify reports whether password matches the hash encoded, comparing in
// constant time. needsRehash is true when the password matches but the hash
// was made with other parameters than Default: the caller stores
// Hash(password, Default) in its place. err (wrapping ErrMalformed) is for an
// encoding that is not a well-formed argon2id hash within the accepted
// bounds; it is refused before any hashing.
//
// A password over MaxLength never matches (Hash refuses them) and is not
// hashed, the same for every account and for VerifyDummy.
func Verify(password, encoded string) (ok bool, needsRehash bool, err error) {
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	if len(password) > MaxLength {
		return false, false, nil
	}
	got := idKey([]byte(password), salt, p)
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return false, false, nil
	}
	return true, p != Default, nil
}

// dummy is a hash with Default's parameters that no password matches: a
// random key under a random salt costs a Verify exactly what a real hash
// does, and no hashing to make. It is made once, again only if Default
// changes.
var dummy struct {
	sync.Mutex
	p       Params
	encoded string
}

func dummyHash() string {
	dummy.Lock()
	defer dummy.Unlock()
	if dummy.encoded == "" || dummy.p != Default {
		p := Default
		salt, key := make([]byte, p.SaltLen), make([]byte, p.KeyLen)
		rand.Read(salt)
		rand.Read(key)
		dummy.p, dummy.encoded = p, encode(p, salt, key)
	}
	return dummy.encoded
}

// VerifyDummy does the work of Verify against a hash made with Default, and
// discards the result. A login for an unknown email calls it instead of
// Verify, so the response time does not reveal whether the email has an
// account. (A user whose hash still has older parameters takes as long as
// those parameters cost until the hash is remade.)
func VerifyDummy(password string) {
	Verify(password, dummyHash())
}
