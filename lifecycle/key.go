package lifecycle

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"

	"github.com/credlife/clm/lifecycle/driver"

	clmcipher "github.com/credlife/clm/cipher"
)

// Limits and defaults of the symmetric-key fields (spec §7).
const (
	MaxKeyAliasLen   = 64
	DefaultKeyLength = 128
	DefaultKeyType   = "AES"
)

// keyLengths are every key length of every algorithm: a length outside it
// is out of range whatever the key type.
var keyLengths = map[int]bool{80: true, 128: true, 192: true, 256: true}

// CreateKey implements Manager.
func (e *Engine) CreateKey(ctx context.Context, req CreateKeyRequest) (res *KeyResult, err error) {
	const op = "CreateKey"
	defer func() { e.auditKey(ctx, op, req.PSK.KeyID, req.Device.ID, 0, res, err) }()
	c := newCheck(op)
	c.psk(req.PSK)
	d := c.device(req.Device, deviceRules{mayRegister: true}, e.requireDevKey)
	c.require("alias", req.Alias != "")
	alg, algErr := clmcipher.ParseAlgorithm(cmp.Or(req.KeyType, DefaultKeyType))
	c.format("keytype", algErr == nil, "must be AES or TWINE")
	c.text("alias", req.Alias, MaxKeyAliasLen)
	c.text("keyfilepath", req.KeyPath, MaxPathLen)
	c.text("commonkeyfilepath", req.Path, MaxPathLen)
	bits := req.KeyLength
	if bits == 0 {
		bits = DefaultKeyLength
	}
	kt, ktErr := clmcipher.NewKeyType(alg, bits)
	c.limit("keylength", algErr != nil || ktErr == nil, "not a key length of the key type")
	caller, err := e.admit(ctx, op, c, req.PSK)
	if err != nil {
		return nil, err
	}
	key, sealed, kn, err := e.newKey(ctx, op, caller.Tenant, kt)
	if err != nil {
		return nil, err
	}
	now := e.now().UTC()
	rec := &driver.CredentialRecord{
		KeyNumber: kn,
		Tenant:    caller.Tenant,
		Kind:      driver.KindSymmetricKey,
		State:     driver.StateValid,
		Alias:     req.Alias,
		KeyType:   kt.Algorithm.String(),
		KeyLength: kt.Bits,
		Secret:    sealed,
		NotBefore: now,
		NotAfter:  now.Add(e.keyValidity),
		CreatedAt: now,
	}
	var replayed *driver.CredentialRecord
	dev, err := e.withDevice(ctx, op, entityKey, caller.Tenant, d, func(tx driver.Tx, dev *DeviceResult) error {
		if d.ID != "" && req.Path != "" {
			var err error
			replayed, err = e.findReplay(ctx, tx, caller.Tenant, dev.Device.ID, req.Path, func(r *driver.CredentialRecord) bool {
				return r.Kind == driver.KindSymmetricKey && r.Alias == rec.Alias && r.KeyType == rec.KeyType && r.KeyLength == rec.KeyLength
			})
			if err != nil || replayed != nil {
				return err
			}
		}
		if err := tx.CreateCredential(ctx, rec); err != nil {
			return err
		}
		return tx.PutBinding(ctx, &driver.BindingRecord{Tenant: caller.Tenant, DeviceID: dev.Device.ID, KeyNumber: kn, Path: req.Path, CreatedAt: now})
	})
	if err != nil {
		return nil, err
	}
	if replayed != nil {
		if key, err = e.openKey(ctx, op, replayed); err != nil {
			return nil, err
		}
		return keyResult(dev, replayed, key), nil
	}
	return keyResult(dev, rec, key), nil
}

// findReplay looks for the credential a retried creation already made: the
// newest binding of the device at path, made within the replay window, to
// a valid credential that match accepts.
func (e *Engine) findReplay(ctx context.Context, tx driver.Tx, tenant, deviceID, path string, match func(*driver.CredentialRecord) bool) (*driver.CredentialRecord, error) {
	if e.replay < 0 {
		return nil, nil
	}
	bs, err := tx.BindingsAt(ctx, tenant, deviceID, path, 1)
	if err != nil || len(bs) == 0 || e.now().Sub(bs[0].CreatedAt) > e.replay {
		return nil, err
	}
	r, err := tx.GetCredential(ctx, bs[0].KeyNumber)
	if err != nil {
		return nil, err
	}
	if r.State != driver.StateValid || r.Tenant != tenant || e.now().Sub(r.CreatedAt) > e.replay || !match(r) {
		return nil, nil
	}
	return r, nil
}

// newKey generates a key of type kt, allocates its keynumber and seals it
// for the tenant.
func (e *Engine) newKey(ctx context.Context, op, tenant string, kt clmcipher.KeyType) (SecretBytes, []byte, int64, error) {
	key, err := clmcipher.GenerateKey(e.rand, kt)
	if err != nil {
		return nil, nil, 0, errf(op, CodeCryptoFailed, "", err)
	}
	kn, err := e.nextNumber(ctx, driver.SeqKeyNumber)
	if err != nil {
		return nil, nil, 0, e.storeErr(op, entityNone, err)
	}
	sealed, err := e.sealer.SealFor(ctx, driver.SealedValue{Kind: driver.SealedCredentialSecret, ID: kn, Tenant: tenant, CredentialKind: driver.KindSymmetricKey}, key)
	if err != nil {
		return nil, nil, 0, err
	}
	return SecretBytes(key), sealed, kn, nil
}

func keyResult(dev *DeviceResult, r *driver.CredentialRecord, key SecretBytes) *KeyResult {
	return &KeyResult{
		Device:    dev,
		KeyNumber: r.KeyNumber,
		Alias:     r.Alias,
		KeyType:   r.KeyType,
		KeyLength: r.KeyLength,
		Key:       key,
		ExpiresAt: r.NotAfter,
	}
}

// lookupKey reads a symmetric key of the tenant: absent, of another
// tenant, not a key, or deleted all answer notFound.
func (e *Engine) lookupKey(ctx context.Context, tx driver.Tx, op, tenant string, kn int64, notFound Code, field string) (*driver.CredentialRecord, error) {
	r, err := tx.GetCredential(ctx, kn)
	switch {
	case errors.Is(err, driver.ErrNotFound):
		return nil, errf(op, notFound, field, nil)
	case err != nil:
		return nil, err
	case r.Tenant != tenant || r.Kind != driver.KindSymmetricKey || r.State == driver.StateDeleted:
		return nil, errf(op, notFound, field, nil)
	}
	return r, nil
}

// boundValidKey reads the key kn that the device holds at path and that is
// still valid: 1501 absent, 1503 not bound there, 1504 replaced or revoked.
func (e *Engine) boundValidKey(ctx context.Context, tx driver.Tx, op, tenant, deviceID string, kn int64, path string) (*driver.CredentialRecord, error) {
	r, err := e.lookupKey(ctx, tx, op, tenant, kn, CodeKeyNotFound, "keynumber")
	if err != nil {
		return nil, err
	}
	if err := e.isolated(ctx, tx, op, tenant, deviceID, r.KeyNumber, CodeKeyNotFound, "keynumber"); err != nil {
		return nil, err
	}
	if err := e.checkBound(ctx, tx, op, tenant, deviceID, r.KeyNumber, path, CodeKeyNotBound); err != nil {
		return nil, err
	}
	if r.State != driver.StateValid {
		return nil, errf(op, CodeKeyUpdated, "keynumber", nil)
	}
	return r, nil
}

// checkBound answers code unless the device holds credential kn at path.
func (e *Engine) checkBound(ctx context.Context, tx driver.Tx, op, tenant, deviceID string, kn int64, path string, code Code) error {
	bs, err := tx.ListBindings(ctx, tenant, deviceID, kn)
	if err != nil {
		return err
	}
	for _, b := range bs {
		if b.Path == path {
			return nil
		}
	}
	return errf(op, code, "filepath", nil)
}

func (e *Engine) openKey(ctx context.Context, op string, r *driver.CredentialRecord) (SecretBytes, error) {
	key, err := e.sealer.OpenSealed(ctx, driver.SealedOf(r))
	if err != nil {
		return nil, errf(op, CodeDecrypt, "", err)
	}
	return SecretBytes(key), nil
}

// GetKey implements Manager.
func (e *Engine) GetKey(ctx context.Context, req GetKeyRequest) (res *KeyResult, err error) {
	const op = "GetKey"
	defer func() { e.auditKey(ctx, op, req.PSK.KeyID, req.Device.ID, 0, res, err) }()
	c := newCheck(op)
	c.psk(req.PSK)
	d := c.device(req.Device, deviceRules{}, e.requireDevKey)
	c.number("keynumber", req.KeyNumber, true)
	c.text("filepath", req.Path, MaxPathLen)
	caller, err := e.admit(ctx, op, c, req.PSK)
	if err != nil {
		return nil, err
	}
	var rec *driver.CredentialRecord
	dev, err := e.withDevice(ctx, op, entityKey, caller.Tenant, d, func(tx driver.Tx, dev *DeviceResult) error {
		var err error
		if rec, err = e.lookupKey(ctx, tx, op, caller.Tenant, req.KeyNumber, CodeKeyNotFound, "keynumber"); err != nil {
			return err
		}
		if err := e.isolated(ctx, tx, op, caller.Tenant, dev.Device.ID, rec.KeyNumber, CodeKeyNotFound, "keynumber"); err != nil {
			return err
		}
		if rec.State != driver.StateValid {
			return errf(op, CodeKeyUpdated, "keynumber", nil)
		}
		return tx.PutBinding(ctx, &driver.BindingRecord{Tenant: caller.Tenant, DeviceID: dev.Device.ID, KeyNumber: rec.KeyNumber, Path: req.Path, CreatedAt: e.now().UTC()})
	})
	if err != nil {
		return nil, err
	}
	key, err := e.openKey(ctx, op, rec)
	if err != nil {
		return nil, err
	}
	return keyResult(dev, rec, key), nil
}

// RotateKey implements Manager. Checks after the device: 1501 no such key,
// 1503 not bound to the device at filepath, 1504 already updated; when
// adopting, 1502 no such new key, 1505 not active, 1506 expired, 1507 of
// another algorithm; when generating, 1104 for a length the algorithm does
// not have. Of concurrent rotations of one key exactly one succeeds; the
// others answer 1504.
func (e *Engine) RotateKey(ctx context.Context, req RotateKeyRequest) (res *KeyResult, err error) {
	const op = "RotateKey"
	defer func() { e.auditKey(ctx, op, req.PSK.KeyID, req.Device.ID, 0, res, err) }()
	c := newCheck(op)
	c.psk(req.PSK)
	d := c.device(req.Device, deviceRules{}, e.requireDevKey)
	c.number("keynumber", req.KeyNumber, true)
	c.number("newkeynumber", req.NewKeyNumber, false)
	c.format("newkeynumber", req.NewKeyNumber == 0 || req.NewKeyNumber != req.KeyNumber, "must differ from keynumber")
	c.text("filepath", req.Path, MaxPathLen)
	c.text("newfilepath", req.NewPath, MaxPathLen)
	c.text("alias", req.Alias, MaxKeyAliasLen)
	c.limit("keylength", req.KeyLength == 0 || keyLengths[req.KeyLength], "not a key length of any key type")
	caller, err := e.admit(ctx, op, c, req.PSK)
	if err != nil {
		return nil, err
	}
	newPath := cmp.Or(req.NewPath, req.Path)

	// A new key is generated before the transaction, which may run more
	// than once. Its type comes from a first, unchecked read of the old key;
	// the transaction checks everything again.
	var (
		fresh  SecretBytes
		sealed []byte
		kn     int64
		kt     clmcipher.KeyType
	)
	if req.NewKeyNumber == 0 {
		if old, err := e.store.GetCredential(ctx, req.KeyNumber); err == nil && old.Kind == driver.KindSymmetricKey && old.Tenant == caller.Tenant {
			alg, _ := clmcipher.ParseAlgorithm(old.KeyType)
			bits := old.KeyLength
			if req.KeyLength != 0 {
				bits = req.KeyLength
			}
			if kt, err = clmcipher.NewKeyType(alg, bits); err == nil {
				if fresh, sealed, kn, err = e.newKey(ctx, op, caller.Tenant, kt); err != nil {
					return nil, err
				}
			}
		}
	}

	var result *driver.CredentialRecord
	now := e.now().UTC()
	dev, err := e.withDevice(ctx, op, entityKey, caller.Tenant, d, func(tx driver.Tx, dev *DeviceResult) error {
		old, err := e.boundValidKey(ctx, tx, op, caller.Tenant, dev.Device.ID, req.KeyNumber, req.Path)
		if err != nil {
			return err
		}
		if req.NewKeyNumber != 0 {
			adopted, err := e.lookupKey(ctx, tx, op, caller.Tenant, req.NewKeyNumber, CodeNewKeyNotFound, "newkeynumber")
			if err == nil {
				err = e.isolated(ctx, tx, op, caller.Tenant, dev.Device.ID, adopted.KeyNumber, CodeNewKeyNotFound, "newkeynumber")
			}
			switch {
			case err != nil:
				return err
			case adopted.State != driver.StateValid:
				return errf(op, CodeNewKeyNotActive, "newkeynumber", nil)
			case !now.Before(adopted.NotAfter):
				return errf(op, CodeNewKeyExpired, "newkeynumber", nil)
			case adopted.KeyType != old.KeyType:
				return errf(op, CodeNewKeyTypeMismatch, "newkeynumber", nil)
			}
			result = adopted
		} else {
			if fresh == nil || kt.Algorithm.String() != old.KeyType {
				return fieldErr(op, CodeOutOfRange, "keylength", "not a key length of the key type")
			}
			alias := req.Alias
			if alias == "" {
				alias = old.Alias
			}
			result = &driver.CredentialRecord{
				KeyNumber: kn,
				Tenant:    caller.Tenant,
				Kind:      driver.KindSymmetricKey,
				State:     driver.StateValid,
				Alias:     alias,
				KeyType:   kt.Algorithm.String(),
				KeyLength: kt.Bits,
				Secret:    sealed,
				NotBefore: now,
				NotAfter:  now.Add(e.keyValidity),
				CreatedAt: now,
			}
			if err := tx.CreateCredential(ctx, result); err != nil {
				return err
			}
		}
		err = tx.TransitionCredential(ctx, driver.Transition{
			KeyNumber: old.KeyNumber, From: driver.StateValid, To: driver.StateSuperseded,
			At: now, Reason: ReasonSuperseded, ReplacedBy: result.KeyNumber,
		})
		if err != nil {
			return err
		}
		return tx.PutBinding(ctx, &driver.BindingRecord{Tenant: caller.Tenant, DeviceID: dev.Device.ID, KeyNumber: result.KeyNumber, Path: newPath, CreatedAt: now})
	})
	if errors.Is(err, driver.ErrConflict) {
		// A concurrent change won. Answer as a request after it would: a
		// deleted key is absent (1501), a rotated one updated (1504).
		if r, rerr := e.store.GetCredential(ctx, req.KeyNumber); rerr == nil && r.State == driver.StateDeleted {
			return nil, errf(op, CodeKeyNotFound, "keynumber", err)
		}
	}
	if err != nil {
		return nil, err
	}
	key := fresh
	if req.NewKeyNumber != 0 {
		if key, err = e.openKey(ctx, op, result); err != nil {
			return nil, err
		}
	}
	return keyResult(dev, result, key), nil
}

// DeleteKey implements Manager. Checks after the device: 1501 no such key,
// 1503 not bound at filepath, 1504 already updated, 1508 commonkey does not
// match (compared in constant time). The sealed key is erased from the
// store.
func (e *Engine) DeleteKey(ctx context.Context, req DeleteKeyRequest) (res *DeleteKeyResult, err error) {
	const op = "DeleteKey"
	defer func() {
		var done *KeyResult
		if res != nil {
			done = &KeyResult{Device: res.Device, KeyNumber: res.KeyNumber}
		}
		e.auditKey(ctx, op, req.PSK.KeyID, req.Device.ID, req.KeyNumber, done, err)
	}()
	c := newCheck(op)
	c.psk(req.PSK)
	d := c.device(req.Device, deviceRules{}, e.requireDevKey)
	c.number("keynumber", req.KeyNumber, true)
	c.require("commonkey", len(req.Key) > 0)
	c.text("filepath", req.Path, MaxPathLen)
	c.limit("commonkey", len(req.Key) <= 64, "longer than any key")
	caller, err := e.admit(ctx, op, c, req.PSK)
	if err != nil {
		return nil, err
	}
	dev, err := e.withDevice(ctx, op, entityKey, caller.Tenant, d, func(tx driver.Tx, dev *DeviceResult) error {
		old, err := e.boundValidKey(ctx, tx, op, caller.Tenant, dev.Device.ID, req.KeyNumber, req.Path)
		if err != nil {
			return err
		}
		stored, err := e.openKey(ctx, op, old)
		if err != nil {
			return err
		}
		match := subtle.ConstantTimeCompare(stored, req.Key) == 1
		clear(stored)
		if !match {
			return errf(op, CodeCommonKeyMismatch, "commonkey", nil)
		}
		err = tx.TransitionCredential(ctx, driver.Transition{KeyNumber: old.KeyNumber, From: driver.StateValid, To: driver.StateDeleted, At: e.now().UTC()})
		if err != nil {
			return err
		}
		return tx.ReplaceSealed(ctx, driver.SealedOf(old), nil)
	})
	if err != nil {
		return nil, err
	}
	return &DeleteKeyResult{Device: dev, KeyNumber: req.KeyNumber}, nil
}
