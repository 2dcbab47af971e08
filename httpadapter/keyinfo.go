package httpadapter

import (
	"encoding/base64"
	"net/http"

	"github.com/credlife/clm/internal/wire"
	"github.com/credlife/clm/lifecycle"
)

func keyResponse(r *lifecycle.KeyResult) wire.KeyInfoResponse {
	resp := wire.KeyInfoResponse{
		CommonKey:  base64.StdEncoding.EncodeToString(r.Key.Reveal()),
		KeyNumber:  wire.Num(r.KeyNumber),
		Alias:      r.Alias,
		Expiration: wire.Expiration(r.ExpiresAt),
	}
	if r.Device != nil && r.Device.Device != nil {
		resp.DeviceID, resp.DeviceKey = r.Device.Device.ID, r.Device.Key.Reveal()
	}
	return resp
}

// keyInfo serves KeyInfo (spec §7).
func (h *Handler) keyInfo(x *exchange) {
	ctx := x.ctx
	b := h.readBody(x, "create", "get", "update", "delete")
	if b == nil {
		return
	}
	var (
		res    *lifecycle.KeyResult
		err    error
		status = http.StatusOK
	)
	switch x.mode {
	case "create":
		b.require(fKeyID, fKey, fAlias, fKeyType, fKeyFile, fCKFile)
		req := lifecycle.CreateKeyRequest{PSK: b.psk(), Device: b.device(), Alias: b.str(fAlias...), KeyType: b.str(fKeyType...),
			KeyLength: int(b.num("keylength")), KeyPath: b.str(fKeyFile...), Path: b.str(fCKFile...)}
		if err := b.err("CreateKey"); err != nil {
			x.fail(err)
			return
		}
		res, err = h.m.CreateKey(ctx, req)
		status = http.StatusCreated
	case "get":
		b.require(fKeyID, fKey, fDevID, fDevName, fKeyNum, fFilePath)
		req := lifecycle.GetKeyRequest{PSK: b.psk(), Device: b.device(), KeyNumber: b.num(fKeyNum...), Path: b.str(fFilePath...)}
		if err := b.err("GetKey"); err != nil {
			x.fail(err)
			return
		}
		res, err = h.m.GetKey(ctx, req)
	case "update":
		b.require(fKeyID, fKey, fDevID, fDevName, fKeyNum, fFilePath)
		req := lifecycle.RotateKeyRequest{PSK: b.psk(), Device: b.device(), KeyNumber: b.num(fKeyNum...), NewKeyNumber: b.num("newkeynumber"),
			Alias: b.str(fAlias...), KeyLength: int(b.num("keylength")), Path: b.str(fFilePath...), NewPath: b.str("newfilepath")}
		if err := b.err("RotateKey"); err != nil {
			x.fail(err)
			return
		}
		res, err = h.m.RotateKey(ctx, req)
	case "delete":
		b.require(fKeyID, fKey, fDevID, fDevName, fKeyNum, fComKey, fFilePath)
		ck := b.str(fComKey...)
		key, decErr := base64.StdEncoding.Strict().DecodeString(ck)
		if ck != "" && decErr != nil {
			b.bad("commonkey")
		}
		req := lifecycle.DeleteKeyRequest{PSK: b.psk(), Device: b.device(), KeyNumber: b.num(fKeyNum...), Key: key, Path: b.str(fFilePath...)}
		if err := b.err("DeleteKey"); err != nil {
			x.fail(err)
			return
		}
		d, err := h.m.DeleteKey(ctx, req)
		if err != nil {
			x.fail(err)
			return
		}
		resp := wire.KeyInfoResponse{KeyNumber: wire.Num(d.KeyNumber)}
		if d.Device != nil && d.Device.Device != nil {
			resp.DeviceID = d.Device.Device.ID
		}
		x.json(http.StatusOK, resp)
		return
	}
	if err != nil {
		x.fail(err)
		return
	}
	x.json(status, keyResponse(res))
}
