package lifecycle

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"maps"
	"net/netip"
	"strconv"
	"strings"

	"github.com/credlife/clm/lifecycle/driver"
)

// Limits of the device fields, in bytes (spec §5).
const (
	MaxDeviceNameLen   = 256
	MaxDeviceIDLen     = 64
	MaxExtDataNameLen  = 128
	MaxExtDataValueLen = 256
	MaxExtDataEntries  = 64
	MaxPathLen         = 1024
)

const (
	deviceIDLen       = 36 // characters of [0-9a-z]: about 186 bits
	deviceIDAlphabet  = "0123456789abcdefghijklmnopqrstuvwxyz"
	deviceKeyLen      = 32 // characters of [0-9A-Za-z]: about 190 bits
	deviceKeyAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// deviceKeyAD is what a keyed hash of a device key (the form before device
// keys were sealed) is bound to.
func deviceKeyAD(tenant, id string) []byte {
	return []byte("clm/device/" + strconv.Itoa(len(tenant)) + "/" + tenant + "/" + id + "/key")
}

// deviceSealed names the sealed key of a device.
func deviceSealed(r *driver.DeviceRecord) driver.SealedValue {
	return driver.SealedValue{Kind: driver.SealedDeviceKey, Tenant: r.Tenant, DeviceID: r.ID, Value: r.SealedKey}
}

// verifyDeviceKey compares key with the device's, in constant time. The
// key is sealed (so that Reseal carries it to a new master key); a device
// registered by an older version holds a keyed hash of it instead, which
// cannot be carried over: upgrade says that the key, now verified, should
// be sealed in its place.
func (e *Engine) verifyDeviceKey(ctx context.Context, r *driver.DeviceRecord, key Secret) (ok, upgrade bool, err error) {
	if len(r.SealedKey) > 0 && r.SealedKey[0] == macFormat {
		ok, err := e.sealer.VerifyMAC(ctx, r.SealedKey, []byte(key), deviceKeyAD(r.Tenant, r.ID))
		return ok, ok, err
	}
	stored, err := e.sealer.OpenSealed(ctx, deviceSealed(r))
	if err != nil {
		return false, false, err
	}
	ok = subtle.ConstantTimeCompare(stored, []byte(key)) == 1
	clear(stored)
	return ok, false, nil
}

// ParseIPAddress parses IPv4 or IPv6 text (no zone) and returns its
// canonical form.
func ParseIPAddress(s string) (string, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", errors.New("not an IPv4 or IPv6 address")
	}
	return a.String(), nil
}

// ParseMACAddress parses a 48-bit MAC address written 12:34:56:78:90:ab,
// 12-34-56-78-90-ab or 1234567890ab (any case) and returns it in lowercase
// colon form.
func ParseMACAddress(s string) (string, error) {
	var digits string
	switch len(s) {
	case 12:
		digits = s
	case 17:
		sep := s[2]
		if sep != ':' && sep != '-' {
			return "", errors.New("not a MAC address")
		}
		var b strings.Builder
		for i := 0; i < 17; i++ {
			if i%3 == 2 {
				if s[i] != sep {
					return "", errors.New("not a MAC address")
				}
				continue
			}
			b.WriteByte(s[i])
		}
		digits = b.String()
	default:
		return "", errors.New("not a MAC address")
	}
	raw, err := hex.DecodeString(digits)
	if err != nil || len(raw) != 6 {
		return "", errors.New("not a MAC address")
	}
	h := hex.EncodeToString(raw)
	return h[0:2] + ":" + h[2:4] + ":" + h[4:6] + ":" + h[6:8] + ":" + h[8:10] + ":" + h[10:12], nil
}

// deviceRules says how a call site treats the device part of a request.
type deviceRules struct {
	mayRegister  bool // a request without ID registers a device
	nameRequired bool // a registration needs a name (else the ID names it)
}

// device checks the device part of a request (presence, formats, limits)
// and returns it normalised.
func (c *check) device(d DeviceRequest, rules deviceRules, requireKey bool) DeviceRequest {
	c.require("deviceid", d.ID != "" || rules.mayRegister)
	c.require("devicename", d.ID != "" || !rules.nameRequired || d.Name != "")
	c.require("devicekey", d.ID == "" || !requireKey || d.Key != "")
	c.text("deviceid", d.ID, MaxDeviceIDLen)
	c.text("devicename", d.Name, MaxDeviceNameLen)
	c.text("devicekey", string(d.Key), 1024)
	if d.IPAddress != "" {
		ip, err := ParseIPAddress(d.IPAddress)
		c.format("ipaddress", err == nil, "not an IPv4 or IPv6 address")
		d.IPAddress = ip
	}
	if d.MACAddress != "" {
		mac, err := ParseMACAddress(d.MACAddress)
		c.format("macaddress", err == nil, "not a MAC address")
		d.MACAddress = mac
	}
	for k, v := range d.ExtData {
		c.format("ext_data", k != "", "empty name")
		c.text("ext_data", k, MaxExtDataNameLen)
		c.text("ext_data", v, MaxExtDataValueLen)
	}
	c.limit("ext_data", len(d.ExtData) <= MaxExtDataEntries, "more than 64 entries")
	d.ExtData = maps.Clone(d.ExtData)
	return d
}

// resolveDevice finds or registers the device of a request whose fields
// checkDevice accepted, in the tenant of the authenticated caller, inside tx
// (spec §5). Order: 1706 unknown, 1701 name mismatch, 1703 key mismatch,
// 1704 disabled, 1705 expired. A device of another tenant is unknown.
func (e *Engine) resolveDevice(ctx context.Context, tx driver.Tx, op, tenant string, d DeviceRequest) (*DeviceResult, error) {
	now := e.now().UTC()
	if d.ID == "" {
		id, err := e.randomString(deviceIDLen, deviceIDAlphabet)
		if err != nil {
			return nil, errf(op, CodeSystem, "", err)
		}
		key, err := e.randomString(deviceKeyLen, deviceKeyAlphabet)
		if err != nil {
			return nil, errf(op, CodeSystem, "", err)
		}
		sealedKey, err := e.sealer.SealFor(ctx, driver.SealedValue{Kind: driver.SealedDeviceKey, Tenant: tenant, DeviceID: id}, []byte(key))
		if err != nil {
			return nil, err
		}
		name := d.Name
		if name == "" {
			name = id
		}
		r := &driver.DeviceRecord{
			Tenant:     tenant,
			ID:         id,
			Name:       name,
			SealedKey:  sealedKey,
			Status:     DeviceActive,
			IPAddress:  d.IPAddress,
			MACAddress: d.MACAddress,
			ExtData:    d.ExtData,
			CreatedAt:  now,
			UpdatedAt:  now,
		}
		if e.deviceValidity > 0 {
			r.ExpiresAt = now.Add(e.deviceValidity)
		}
		if err := tx.CreateDevice(ctx, r); err != nil {
			err = e.storeErr(op, entityDevice, err)
			if errors.Is(err, CodeDeviceNameExists) {
				err.(*Error).Field = goField(op, "devicename")
			}
			return nil, err
		}
		return &DeviceResult{Device: deviceOf(r), Key: Secret(key)}, nil
	}

	r, upgrade, err := e.knownDevice(ctx, tx, op, tenant, d)
	if err != nil {
		return nil, err
	}
	if upgrade {
		sealedKey, err := e.sealer.SealFor(ctx, deviceSealed(r), []byte(d.Key))
		if err != nil {
			return nil, err
		}
		// A concurrent request that sealed it first is as good.
		if err := tx.ReplaceSealed(ctx, deviceSealed(r), sealedKey); err != nil && !errors.Is(err, driver.ErrConflict) {
			return nil, e.storeErr(op, entityDevice, err)
		}
	}
	changed := false
	if d.IPAddress != "" && d.IPAddress != r.IPAddress {
		r.IPAddress, changed = d.IPAddress, true
	}
	if d.MACAddress != "" && d.MACAddress != r.MACAddress {
		r.MACAddress, changed = d.MACAddress, true
	}
	if len(d.ExtData) > 0 {
		merged := maps.Clone(r.ExtData)
		if merged == nil {
			merged = make(map[string]string, len(d.ExtData))
		}
		maps.Copy(merged, d.ExtData)
		if len(merged) > MaxExtDataEntries {
			return nil, fieldErr(op, CodeOutOfRange, "ext_data", "the device would have more than 64 entries")
		}
		if !maps.Equal(merged, r.ExtData) {
			r.ExtData, changed = merged, true
		}
	}
	if changed {
		r.UpdatedAt = now
		if err := tx.UpdateDevice(ctx, r); err != nil {
			return nil, e.storeErr(op, entityDevice, err)
		}
	}
	return &DeviceResult{Device: deviceOf(r)}, nil
}

// knownDevice reads the device a request names by ID and checks it (spec
// §5): 1706 unknown, 1701 name mismatch, 1703 key mismatch, 1704 disabled,
// 1705 expired. upgrade: see verifyDeviceKey.
func (e *Engine) knownDevice(ctx context.Context, tx driver.Tx, op, tenant string, d DeviceRequest) (r *driver.DeviceRecord, upgrade bool, err error) {
	r, err = tx.GetDevice(ctx, tenant, d.ID)
	if err != nil {
		return nil, false, e.storeErr(op, entityDevice, err)
	}
	if r.Tenant != tenant || r.ID != d.ID {
		// The store compares byte for byte (storetest checks it); this is
		// the engine's own guard against one that does not.
		return nil, false, errf(op, CodeDeviceNotFound, "deviceid", nil)
	}
	if d.Name != "" && d.Name != r.Name {
		return nil, false, errf(op, CodeDeviceMismatch, "devicename", nil)
	}
	if d.Key != "" {
		ok, up, err := e.verifyDeviceKey(ctx, r, d.Key)
		if err != nil {
			return nil, false, errf(op, CodeDecrypt, "", err)
		}
		if !ok {
			return nil, false, errf(op, CodeDeviceKeyMismatch, "devicekey", nil)
		}
		upgrade = up
	}
	if r.Status != DeviceActive {
		return nil, false, errf(op, CodeDeviceNotActive, "", nil)
	}
	if !r.ExpiresAt.IsZero() && !e.now().Before(r.ExpiresAt) {
		return nil, false, errf(op, CodeDeviceExpired, "", nil)
	}
	return r, upgrade, nil
}

// precheckDevice runs the checks of resolveDevice that can fail, outside a
// transaction and changing nothing, so that a request about to fail them
// does no expensive work (a key, a signature) first: an unknown, mismatched,
// disabled or expired device, or a registration under a taken name. The
// transaction checks again.
func (e *Engine) precheckDevice(ctx context.Context, op, tenant string, d DeviceRequest) error {
	if d.ID != "" {
		_, _, err := e.knownDevice(ctx, e.store, op, tenant, d)
		return err
	}
	if d.Name == "" {
		return nil
	}
	switch _, err := e.store.GetDeviceByName(ctx, tenant, d.Name); {
	case err == nil:
		return errf(op, CodeDeviceNameExists, "devicename", nil)
	case errors.Is(err, driver.ErrNotFound):
		return nil
	default:
		return e.storeErr(op, entityDevice, err)
	}
}

func deviceOf(r *driver.DeviceRecord) *Device {
	return &Device{
		Tenant:     r.Tenant,
		ID:         r.ID,
		Name:       r.Name,
		Status:     r.Status,
		IPAddress:  r.IPAddress,
		MACAddress: r.MACAddress,
		ExtData:    maps.Clone(r.ExtData),
		CreatedAt:  r.CreatedAt,
		UpdatedAt:  r.UpdatedAt,
		ExpiresAt:  r.ExpiresAt,
	}
}

// admit ends the checks of a device request: the verdict of c, then the
// PSK. It returns the authenticated PSK.
func (e *Engine) admit(ctx context.Context, op string, c *check, p PSKCredentials) (*driver.PSKRecord, error) {
	if err := c.err(); err != nil {
		return nil, err
	}
	return e.authenticate(ctx, op, p)
}

// withDevice runs fn in one transaction after resolving the request's
// device in the tenant, and maps the store's errors for what.
func (e *Engine) withDevice(ctx context.Context, op string, what entity, tenant string, d DeviceRequest, fn func(tx driver.Tx, dev *DeviceResult) error) (*DeviceResult, error) {
	var dev *DeviceResult
	err := e.store.Atomic(ctx, func(tx driver.Tx) error {
		var err error
		if dev, err = e.resolveDevice(ctx, tx, op, tenant, d); err != nil {
			return err
		}
		return fn(tx, dev)
	})
	if err != nil {
		return nil, e.storeErr(op, what, err)
	}
	return dev, nil
}

// EnrollDevice implements Manager. A registration needs a device name.
func (e *Engine) EnrollDevice(ctx context.Context, req EnrollDeviceRequest) (res *DeviceResult, err error) {
	const op = "EnrollDevice"
	defer func() {
		e.audit(ctx, AuditEvent{Op: op, KeyID: req.PSK.KeyID, DeviceID: cmp.Or(devID(res), req.Device.ID), Tenant: devTenant(res)}, err)
	}()
	c := newCheck(op)
	c.psk(req.PSK)
	d := c.device(req.Device, deviceRules{mayRegister: true, nameRequired: true}, e.requireDevKey)
	caller, err := e.admit(ctx, op, c, req.PSK)
	if err != nil {
		return nil, err
	}
	return e.withDevice(ctx, op, entityDevice, caller.Tenant, d, func(driver.Tx, *DeviceResult) error { return nil })
}

// GetDevice implements Manager.
func (e *Engine) GetDevice(ctx context.Context, tenant, deviceID string) (*Device, error) {
	const op = "GetDevice"
	if tenant == "" {
		return nil, fieldErr(op, CodeMissing, "tenantid", "required")
	}
	if deviceID == "" {
		return nil, fieldErr(op, CodeMissing, "deviceid", "required")
	}
	r, err := e.store.GetDevice(ctx, tenant, deviceID)
	if err != nil {
		return nil, e.storeErr(op, entityDevice, err)
	}
	return deviceOf(r), nil
}

// ListDevices implements Manager.
func (e *Engine) ListDevices(ctx context.Context, req ListDevicesRequest) (*DevicePage, error) {
	const op = "ListDevices"
	if req.Tenant == "" {
		return nil, fieldErr(op, CodeMissing, "tenantid", "required")
	}
	limit, err := e.limit(op, req.Limit)
	if err != nil {
		return nil, err
	}
	rs, err := e.store.ListDevices(ctx, driver.DeviceQuery{Tenant: req.Tenant, After: req.After, Limit: limit + 1})
	if err != nil {
		return nil, e.storeErr(op, entityNone, err)
	}
	page := &DevicePage{Devices: make([]*Device, 0, min(len(rs), limit))}
	for i, r := range rs {
		if i == limit {
			page.Next = page.Devices[limit-1].ID
			break
		}
		d := deviceOf(r)
		if req.Counts {
			st, err := e.store.CredentialStats(ctx, driver.CredentialQuery{Tenant: req.Tenant, DeviceID: r.ID, States: []driver.CredentialState{driver.StateValid}})
			if err != nil {
				return nil, e.storeErr(op, entityNone, err)
			}
			d.ValidCredentials = int(st.Count)
		}
		page.Devices = append(page.Devices, d)
	}
	return page, nil
}

// SetDeviceStatus implements Manager.
func (e *Engine) SetDeviceStatus(ctx context.Context, tenant, deviceID string, s DeviceStatus) (err error) {
	const op = "SetDeviceStatus"
	defer func() {
		e.audit(ctx, AuditEvent{Op: op + "(" + s.String() + ")", Tenant: tenant, DeviceID: deviceID}, err)
	}()
	if s != DeviceActive && s != DeviceDisabled {
		return fieldErr(op, CodeMalformed, "status", "unknown device status")
	}
	err = e.store.Atomic(ctx, func(tx driver.Tx) error {
		r, err := tx.GetDevice(ctx, tenant, deviceID)
		if err != nil {
			return e.storeErr(op, entityDevice, err)
		}
		r.Status = s
		r.UpdatedAt = e.now().UTC()
		return tx.UpdateDevice(ctx, r)
	})
	if err != nil {
		return e.storeErr(op, entityDevice, err)
	}
	return nil
}
