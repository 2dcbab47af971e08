package lifecycle

import (
	"context"
	"errors"
	"strconv"
)

// ResealStats counts what a re-seal pass did.
type ResealStats struct {
	Examined int // sealed values read
	Resealed int // values moved to the current KEK
	Skipped  int // values changed concurrently, left for the next pass
}

// Reseal moves every sealed value in the store to the current KEK of the
// KeySource, a page at a time, so that retired KEK versions can then be
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
	for _, kind := range []SealedKind{SealedPSKPassword, SealedCredentialSecret} {
		var after int64
		for {
			vs, err := e.store.ListSealed(ctx, kind, after, e.pageSize)
			if err != nil {
				return st, e.storeErr(op, entityNone, err)
			}
			for _, v := range vs {
				after = v.ID
				st.Examined++
				ver, err := SealedVersion(v.Value)
				if err != nil {
					return st, errf(op, CodeDecrypt, "", err)
				}
				if ver == cur.Version {
					continue
				}
				ad := sealedAD(kind, v.ID)
				pt, err := e.sealer.Open(ctx, v.Value, ad)
				if err != nil {
					return st, errf(op, CodeDecrypt, "", errors.New("record "+strconv.FormatInt(v.ID, 10)+" does not open"))
				}
				nv, err := e.sealer.Seal(ctx, pt, ad)
				clear(pt)
				if err != nil {
					return st, err
				}
				switch err := e.store.ReplaceSealed(ctx, v, nv); {
				case errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound):
					st.Skipped++
				case err != nil:
					return st, e.storeErr(op, entityNone, err)
				default:
					st.Resealed++
				}
			}
			if len(vs) == 0 {
				break
			}
		}
	}
	return st, nil
}

// sealedAD is the associated data of a sealed column's value.
func sealedAD(kind SealedKind, id int64) []byte {
	switch kind {
	case SealedPSKPassword:
		return pskAD(id)
	default:
		return credentialAD(id)
	}
}

// CredentialAD is the associated data that binds the sealed secret of a
// credential (a private key, a symmetric key) to its keynumber. A CA that
// keeps its key in the store seals it with this.
func CredentialAD(keyNumber int64) []byte { return credentialAD(keyNumber) }

func credentialAD(keyNumber int64) []byte {
	return []byte("clm/credential/" + strconv.FormatInt(keyNumber, 10) + "/secret")
}
