package lifecycle_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ocsp"

	"github.com/credlife/clm/lifecycle"
)

func TestDecommissionDevice(t *testing.T) {
	f := newCertFixture(t, nil)
	c1 := f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=a", Path: "/a"})
	c2 := f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=b", Path: "/b"})
	renewed, err := f.m.RenewCertificate(bg, lifecycle.RenewCertificateRequest{PSK: f.creds, Device: f.dev, Ref: lifecycle.CertificateRef{KeyNumber: c2.Certificate.KeyNumber}, Path: "/b"})
	require.NoError(t, err)
	k1, err := f.m.CreateKey(bg, lifecycle.CreateKeyRequest{PSK: f.creds, Device: f.dev, Alias: "k", Path: "/k"})
	require.NoError(t, err)
	k2, err := f.m.RotateKey(bg, lifecycle.RotateKeyRequest{PSK: f.creds, Device: f.dev, KeyNumber: k1.KeyNumber, Path: "/k"})
	require.NoError(t, err)
	// Another device of the tenant keeps its own.
	other, err := f.m.IssueCertificate(bg, lifecycle.IssueCertificateRequest{PSK: f.creds, Device: lifecycle.DeviceRequest{Name: "other"}, Subject: "/CN=o"})
	require.NoError(t, err)

	_, err = f.m.DecommissionDevice(bg, lifecycle.DecommissionRequest{Tenant: "t", DeviceID: "nope"})
	require.ErrorIs(t, err, lifecycle.CodeDeviceNotFound)
	_, err = f.m.DecommissionDevice(bg, lifecycle.DecommissionRequest{Tenant: "other-tenant", DeviceID: f.dev.ID})
	require.ErrorIs(t, err, lifecycle.CodeDeviceNotFound, "another tenant's device does not exist")

	res, err := f.m.DecommissionDevice(bg, lifecycle.DecommissionRequest{Tenant: "t", DeviceID: f.dev.ID, Reason: ocsp.KeyCompromise})
	require.NoError(t, err)
	assert.ElementsMatch(t, []int64{c1.Certificate.KeyNumber, renewed.Certificate.KeyNumber}, res.Revoked, "every valid certificate (not the superseded one)")
	assert.ElementsMatch(t, []int64{k1.KeyNumber, k2.KeyNumber}, res.KeysDeleted, "every key, the superseded one too")
	assert.True(t, res.Disabled)
	assert.Equal(t, lifecycle.DeviceDisabled, res.Device.Status)

	// On the CRL and in OCSP with the reason; the keys are gone; the
	// device is refused.
	crl, err := f.m.CRL(bg, "ca1")
	require.NoError(t, err)
	assert.Contains(t, string(crl.DER), string(parseCert(t, c1.Certificate.Data).SerialNumber.Bytes()))
	r := f.ocsp(t, parseCert(t, renewed.Certificate.Data))
	assert.Equal(t, ocsp.Revoked, r.Status)
	assert.Equal(t, ocsp.KeyCompromise, r.RevocationReason)
	assert.Equal(t, ocsp.Good, f.ocsp(t, parseCert(t, other.Certificate.Data)).Status, "another device's certificate stays good")
	_, err = f.m.GetKey(bg, lifecycle.GetKeyRequest{PSK: f.creds, Device: lifecycle.DeviceRequest{ID: other.Device.Device.ID, Key: other.Device.Key}, KeyNumber: k2.KeyNumber})
	require.ErrorIs(t, err, lifecycle.CodeKeyNotFound, "a deleted key answers 1501 to anyone")
	_, err = f.m.CreateKey(bg, lifecycle.CreateKeyRequest{PSK: f.creds, Device: f.dev, Alias: "again"})
	require.ErrorIs(t, err, lifecycle.CodeDeviceNotActive)
	info, err := f.m.GetCredential(bg, lifecycle.GetCredentialRequest{Tenant: "t", Ref: lifecycle.CertificateRef{KeyNumber: k2.KeyNumber}})
	require.NoError(t, err)
	assert.Equal(t, lifecycle.StateDeleted, info.State)

	// Idempotent: nothing left to change.
	again, err := f.m.DecommissionDevice(bg, lifecycle.DecommissionRequest{Tenant: "t", DeviceID: f.dev.ID})
	require.NoError(t, err)
	assert.Empty(t, again.Revoked)
	assert.Empty(t, again.KeysDeleted)
	assert.False(t, again.Disabled)
	crl2, err := f.m.CRL(bg, "ca1")
	require.NoError(t, err)
	assert.Equal(t, crl.Number, crl2.Number, "a second call changes nothing")
}

func TestInventory(t *testing.T) {
	clock := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	f := newCertFixture(t, &lifecycle.Options{Now: now, CertValidity: 30 * 24 * time.Hour, KeyValidity: 90 * 24 * time.Hour})
	var certs []int64
	for i := range 3 {
		clock = clock.Add(time.Duration(i) * 24 * time.Hour) // issued on days 0, 1 and 3
		certs = append(certs, f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=c", Path: "/c" + string(rune('0'+i))}).Certificate.KeyNumber)
	}
	k, err := f.m.CreateKey(bg, lifecycle.CreateKeyRequest{PSK: f.creds, Device: f.dev, Alias: "k"})
	require.NoError(t, err)
	// Another tenant's certificate expires in the window too.
	p, err := f.m.IssuePSK(bg, lifecycle.IssuePSKRequest{Tenant: "t2", Alias: "a"})
	require.NoError(t, err)
	_, err = f.m.IssueCertificate(bg, lifecycle.IssueCertificateRequest{PSK: lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}, Subject: "/CN=x"})
	require.NoError(t, err)

	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	list := func(req lifecycle.ListCredentialsRequest) []int64 {
		t.Helper()
		var out []int64
		for {
			page, err := f.m.ListCredentials(bg, req)
			require.NoError(t, err)
			for _, c := range page.Credentials {
				assert.Equal(t, req.Tenant, c.Tenant)
				out = append(out, c.KeyNumber)
			}
			if page.Next == "" {
				return out
			}
			req.After = page.Next
		}
	}
	assert.Equal(t, append(append([]int64{}, certs...), k.KeyNumber), list(lifecycle.ListCredentialsRequest{Tenant: "t", Limit: 1}), "every credential, one per page, in keynumber order")
	assert.Equal(t, certs[:2], list(lifecycle.ListCredentialsRequest{Tenant: "t", ExpiringBefore: start.Add(32 * 24 * time.Hour)}), "expiring before day 32: the certificates of days 0 and 1")
	assert.Equal(t, certs[2:], list(lifecycle.ListCredentialsRequest{Tenant: "t", Kind: lifecycle.KindCertificate, ExpiringAfter: start.Add(32 * 24 * time.Hour)}))
	assert.Equal(t, []int64{k.KeyNumber}, list(lifecycle.ListCredentialsRequest{Tenant: "t", Kind: lifecycle.KindSymmetricKey}))
	assert.Equal(t, append(append([]int64{}, certs...), k.KeyNumber), list(lifecycle.ListCredentialsRequest{Tenant: "t", DeviceID: f.dev.ID}))

	_, err = f.m.RevokeCredential(bg, lifecycle.RevokeCredentialRequest{Tenant: "t2", Ref: lifecycle.CertificateRef{KeyNumber: certs[0]}, Reason: 1})
	require.ErrorIs(t, err, lifecycle.CodeCertNotFound, "another tenant's certificate")
	info, err := f.m.RevokeCredential(bg, lifecycle.RevokeCredentialRequest{Tenant: "t", Ref: lifecycle.CertificateRef{KeyNumber: certs[0]}, Reason: 1})
	require.NoError(t, err)
	assert.Equal(t, lifecycle.StateRevoked, info.State)
	assert.Equal(t, 1, info.Reason)
	_, err = f.m.RevokeCredential(bg, lifecycle.RevokeCredentialRequest{Tenant: "t", CA: "ca1", Ref: lifecycle.CertificateRef{Serial: info.Serial}, Reason: 1})
	require.ErrorIs(t, err, lifecycle.CodeCertRevoked)
	assert.Equal(t, []int64{certs[0]}, list(lifecycle.ListCredentialsRequest{Tenant: "t", States: []lifecycle.CredentialState{lifecycle.StateRevoked}}))

	devs, err := f.m.ListDevices(bg, lifecycle.ListDevicesRequest{Tenant: "t", Counts: true})
	require.NoError(t, err)
	require.Len(t, devs.Devices, 1)
	assert.Equal(t, 3, devs.Devices[0].ValidCredentials, "two certificates and a key")

	_, err = f.m.ListCredentials(bg, lifecycle.ListCredentialsRequest{})
	require.ErrorIs(t, err, lifecycle.CodeMissing)
	_, err = f.m.ListCredentials(bg, lifecycle.ListCredentialsRequest{Tenant: "t", After: "x"})
	require.ErrorIs(t, err, lifecycle.CodeMalformed)
}
