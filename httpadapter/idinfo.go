package httpadapter

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/credlife/clm/internal/wire"
	"github.com/credlife/clm/lifecycle"
)

func pskInfo(p *lifecycle.PSK) wire.PSKInfo {
	return wire.PSKInfo{KeyID: p.KeyID, Key: p.Password.Reveal(), Alias: p.Alias, TenantID: p.Tenant, Expiration: wire.Expiration(p.ExpiresAt)}
}

// idInfo serves IDInfo: POST create/auth/delete, GET to read or list.
func (h *Handler) idInfo(x *exchange) {
	ctx := x.ctx
	if x.r.Method == http.MethodGet {
		if h.requireAdmin(x) {
			return
		}
		h.idInfoGet(x)
		return
	}
	b := h.readBody(x, "create", "auth", "delete")
	if b == nil {
		return
	}
	switch x.mode {
	case "create":
		if h.requireAdmin(x) {
			return
		}
		b.require(fTenant, fAlias)
		req := lifecycle.IssuePSKRequest{Tenant: b.str(fTenant...), Alias: b.str(fAlias...)}
		if err := b.err("IssuePSK"); err != nil {
			x.fail(err)
			return
		}
		p, err := h.m.IssuePSK(ctx, req)
		if err != nil {
			x.fail(err)
			return
		}
		x.json(http.StatusCreated, wire.IDInfoResponse{KeyID: p.KeyID, Key: p.Password.Reveal(), Alias: p.Alias, Expiration: wire.Expiration(p.ExpiresAt)})
	case "auth", "delete":
		b.require(fKeyID, fKey)
		creds := b.psk()
		if err := b.err("IDInfo"); err != nil {
			x.fail(err)
			return
		}
		var err error
		var keyID string
		if x.mode == "auth" {
			var c *lifecycle.Caller
			if c, err = h.m.AuthenticatePSK(ctx, creds); err == nil {
				keyID = c.KeyID
			}
		} else if err = h.m.DeletePSK(ctx, creds); err == nil {
			id, _ := lifecycle.ParseKeyID(creds.KeyID)
			keyID = lifecycle.FormatKeyID(id)
		}
		if err != nil {
			x.fail(err)
			return
		}
		x.json(http.StatusOK, wire.IDInfoResponse{KeyID: keyID})
	}
}

// idInfoGet answers GET IDInfo: ?keyid= reads one PSK (an unknown or
// malformed keyid gives an empty keyinfo); without keyid it lists, with
// the optional tenantid, limit and after.
func (h *Handler) idInfoGet(x *exchange) {
	ctx := x.ctx
	q := x.r.URL.Query()
	infos := []wire.PSKInfo{}
	if q.Has("keyid") {
		keyID := q.Get("keyid")
		p, err := h.m.GetPSK(ctx, keyID)
		switch {
		case err == nil:
			infos = append(infos, pskInfo(p))
		case errors.Is(err, lifecycle.CodePSKNotFound), errors.Is(err, lifecycle.CodeMalformed):
		default:
			x.fail(err)
			return
		}
		x.json(http.StatusOK, wire.IDInfoResponse{KeyID: keyID, KeyInfo: &infos})
		return
	}
	req := lifecycle.ListPSKsRequest{Tenant: q.Get("tenantid"), After: q.Get("after")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			x.fail(&lifecycle.Error{Code: lifecycle.CodeMalformed, Op: "ListPSKs", Field: "limit"})
			return
		}
		req.Limit = n
	}
	page, err := h.m.ListPSKs(ctx, req)
	if err != nil {
		x.fail(err)
		return
	}
	for _, p := range page.PSKs {
		infos = append(infos, pskInfo(p))
	}
	x.json(http.StatusOK, wire.IDInfoResponse{KeyInfo: &infos, Next: page.Next})
}
