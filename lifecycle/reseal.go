package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/credlife/clm/lifecycle/driver"
)

// ResealStats counts what a re-seal pass did.
type ResealStats struct {
	Examined int // sealed values read
	Resealed int // values moved to the current KEK (and the current format)
	Skipped  int // values changed concurrently, left for the next pass
	// DeviceKeysPending counts device keys that a store of an older
	// version holds as keyed hashes, which cannot be re-sealed without the
	// key: each is sealed at its device's next request that carries the
	// key. Retire a KEK version only when none of them was made under it
	// (a device whose hash was, and that has not been back, would answer
	// CodeDecrypt).
	DeviceKeysPending int
}

// Reseal moves every sealed value in the store (PSK passwords, private and
// symmetric keys, device keys) to the current KEK of the KeySource and to
// the current format (which binds each value to its record's tenant and
// kind), a page at a time, so that retired KEK versions can then be
// dropped. Each value is replaced by compare-and-swap: a value changed
// concurrently is skipped, not overwritten. A value that does not open
// stops the pass with CodeDecrypt. Reseal may run while the engine serves.
func (e *Engine) Reseal(ctx context.Context) (ResealStats, error) {
	const op = "Reseal"
	var st ResealStats
	cur, err := e.sealer.src.CurrentKEK(ctx)
	if err != nil {
		return st, errf(op, CodeEncrypt, "", err)
	}
	for _, kind := range []driver.SealedKind{driver.SealedPSKPassword, driver.SealedCredentialSecret, driver.SealedDeviceKey} {
		var after driver.SealedValue
		for {
			vs, err := e.store.ListSealed(ctx, kind, after, e.pageSize)
			if err != nil {
				return st, e.storeErr(op, entityNone, err)
			}
			if len(vs) == 0 {
				break
			}
			for _, v := range vs {
				after = v
				st.Examined++
				if len(v.Value) > 0 && v.Value[0] == macFormat && kind == driver.SealedDeviceKey {
					st.DeviceKeysPending++
					continue
				}
				ver, err := SealedVersion(v.Value)
				if err != nil {
					return st, errf(op, CodeDecrypt, "", err)
				}
				if ver == cur.Version && !v.Legacy() {
					continue
				}
				pt, err := e.sealer.OpenSealed(ctx, v)
				if err != nil {
					return st, errf(op, CodeDecrypt, "", errors.New("a sealed "+kindName(kind)+" does not open"))
				}
				nv, err := e.sealer.SealFor(ctx, v, pt)
				clear(pt)
				if err != nil {
					return st, err
				}
				switch err := e.store.ReplaceSealed(ctx, v, nv); {
				case errors.Is(err, driver.ErrConflict), errors.Is(err, driver.ErrNotFound):
					st.Skipped++
				case err != nil:
					return st, e.storeErr(op, entityNone, err)
				default:
					st.Resealed++
				}
			}
		}
	}
	return st, nil
}

func kindName(k driver.SealedKind) string {
	switch k {
	case driver.SealedPSKPassword:
		return "PSK password"
	case driver.SealedCredentialSecret:
		return "credential secret"
	case driver.SealedDeviceKey:
		return "device key"
	}
	return "value"
}

// ErrWrongMasterKey is wrapped by CheckKeys (and by ca.Open) when the
// store's secrets do not open under the KeySource: the store was sealed
// with a different master key.
var ErrWrongMasterKey = errors.New("this store was sealed with a different master key")

// CheckKeys opens the first sealed value of each kind in the store under
// the KeySource, so that a program started with the wrong master key says
// so at once ("this store was sealed with a different master key, version
// N", wrapping ErrWrongMasterKey) rather than answering CodeDecrypt to its
// first requests. An empty store passes. It costs a read and an open per
// kind.
func (e *Engine) CheckKeys(ctx context.Context) error {
	const op = "CheckKeys"
	for _, kind := range []driver.SealedKind{driver.SealedPSKPassword, driver.SealedCredentialSecret, driver.SealedDeviceKey} {
		vs, err := e.store.ListSealed(ctx, kind, driver.SealedValue{}, 1)
		if err != nil {
			return e.storeErr(op, entityNone, err)
		}
		if len(vs) == 0 || vs[0].Value[0] == macFormat {
			continue // a keyed hash cannot be checked without its secret
		}
		ver, err := SealedVersion(vs[0].Value)
		if err != nil {
			return errf(op, CodeDecrypt, "", err)
		}
		pt, err := e.sealer.OpenSealed(ctx, vs[0])
		if err == nil {
			clear(pt)
			continue
		}
		if errors.Is(err, ErrUnknownKEK) {
			return errf(op, CodeDecrypt, "", fmt.Errorf("%w: it holds values sealed with master key version %d, which the KeySource does not have", ErrWrongMasterKey, ver))
		}
		return errf(op, CodeDecrypt, "", fmt.Errorf("%w, version %d (a %s does not open under the KeySource's version %d)", ErrWrongMasterKey, ver, kindName(kind), ver))
	}
	return nil
}
