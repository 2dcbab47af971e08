package lifecycle

import (
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"sync"
	"time"

	"github.com/credlife/clm/lifecycle/driver"
)

// crlCache keeps the last CRL the engine signed for a CA, with the stats of
// the CA's revoked and superseded certificates it was made from. A request
// is answered from it while those stats are unchanged (one cheap query) and
// it is not past half its validity; a change made by any engine on the
// store changes the stats, so every process sees a revocation at once.
type crlCache struct {
	mu    sync.Mutex // held while signing: one signature per change
	crl   *CRL
	stats driver.CredentialStats
}

// revokedOf selects a CA's revoked and superseded certificates.
func revokedOf(caName string) driver.CredentialQuery {
	return driver.CredentialQuery{CA: caName, Kind: driver.KindCertificate, States: []driver.CredentialState{driver.StateRevoked, driver.StateSuperseded}}
}

// CRL implements Manager: the CA's current CRL, listing its revoked and
// superseded certificates with their reasons. A CRL is signed when the set
// of those certificates changes (a revocation or supersession by any engine
// on the store) or when half its validity has passed, under a CRL number
// that only grows; other calls return the same CRL from memory, so that an
// unauthenticated caller cannot make the CA sign or the store write. A
// revocation committed before the call is on it.
func (e *Engine) CRL(ctx context.Context, caName string) (*CRL, error) {
	const op = "CRL"
	ca := e.cas[caName]
	if ca == nil {
		return nil, errf(op, CodeCANameInvalid, "catype", nil)
	}
	q := revokedOf(caName)
	stats, err := e.store.CredentialStats(ctx, q)
	if err != nil {
		return nil, e.storeErr(op, entityNone, err)
	}
	c := e.crls[caName]
	c.mu.Lock()
	defer c.mu.Unlock()
	now := e.now().UTC()
	if c.crl != nil && c.stats == stats && now.Before(c.crl.ThisUpdate.Add(e.crlValidity/2)) {
		return c.crl, nil
	}
	n, err := e.store.NextNumber(ctx, driver.SeqCRLNumber)
	if err != nil {
		return nil, e.storeErr(op, entityNone, err)
	}
	var entries []x509.RevocationListEntry
	q.Limit = 1000
	for {
		page, err := e.store.ListCredentials(ctx, q)
		if err != nil {
			return nil, e.storeErr(op, entityNone, err)
		}
		for _, r := range page {
			if e.retention > 0 && r.NotAfter.Before(now.Add(-e.retention)) {
				continue // past retention: Purge removes it
			}
			sn, ok := new(big.Int).SetString(r.Serial, 16)
			if !ok {
				return nil, errf(op, CodeDBData, "", errors.New("a stored serial is not hex"))
			}
			entries = append(entries, x509.RevocationListEntry{SerialNumber: sn, RevocationTime: r.StateChangedAt, ReasonCode: r.Reason})
		}
		if len(page) < q.Limit {
			break
		}
		q.After = page[len(page)-1].KeyNumber
	}
	thisUpdate := now.Truncate(time.Second)
	tmpl := &x509.RevocationList{
		Number:                    big.NewInt(n),
		ThisUpdate:                thisUpdate,
		NextUpdate:                thisUpdate.Add(e.crlValidity),
		RevokedCertificateEntries: entries,
	}
	der, err := ca.SignCRL(ctx, tmpl)
	if err != nil {
		return nil, errf(op, CodeCryptoFailed, "", err)
	}
	// The stats read before the listing: a change that raced with it makes
	// the next call sign again, never keeps a CRL without it.
	c.crl = &CRL{CA: caName, Number: n, DER: der, ThisUpdate: tmpl.ThisUpdate, NextUpdate: tmpl.NextUpdate}
	c.stats = stats
	return c.crl, nil
}

// caCheckTTL is how long Status trusts its last proof that the CAs sign.
const caCheckTTL = 10 * time.Second

// caCheck caches Status's proof that every CA can sign.
type caCheck struct {
	mu  sync.Mutex
	at  time.Time // of the last proof; zero when none
	err error     // its outcome
}

// checkCAs proves that every CA can sign (each signs an empty CRL that is
// not kept), at most once per caCheckTTL: an unauthenticated health check
// must not make the CAs sign per request.
func (e *Engine) checkCAs(ctx context.Context) error {
	c := &e.caCheck
	c.mu.Lock()
	defer c.mu.Unlock()
	now := e.now().UTC()
	if !c.at.IsZero() && now.Sub(c.at) < caCheckTTL && !now.Before(c.at) {
		return c.err
	}
	c.err = nil
	for _, ca := range e.caList {
		_, err := ca.SignCRL(ctx, &x509.RevocationList{Number: big.NewInt(0), ThisUpdate: now, NextUpdate: now.Add(time.Minute)})
		if err != nil {
			if ctx.Err() != nil {
				return errf("Status", CodeSystem, "", err) // not a verdict on the CA: not kept
			}
			c.err = errf("Status", CodeCryptoFailed, "", err)
			break
		}
	}
	c.at = now
	return c.err
}
