package gormstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// ops implements driver.Tx on a GORM handle: the Store's own (each call
// its own statement) or a transaction's.
type ops struct {
	db *gorm.DB
	s  *Store
	tx *sql.Tx // the transaction of db, for the prepared statements; nil outside one
	g  *group  // a shared transaction, whose GORM handle (db) is made on first use
}

var _ driver.Tx = (*ops)(nil)

// with returns the handle for a GORM statement under ctx. In a transaction
// the statement runs without ctx's cancellation where the dialect asks for
// it: on SQLite an interrupted statement can roll back the whole
// transaction, which group commit shares between calls.
func (o *ops) with(ctx context.Context) *gorm.DB {
	if o.db == nil && o.g != nil {
		o.db = o.g.gormTx(o.s)
	}
	if o.tx != nil {
		return o.db.WithContext(o.s.detach(ctx))
	}
	return o.db.WithContext(ctx)
}

// NextNumber implements driver.Tx.
func (o *ops) NextNumber(ctx context.Context, seq driver.Sequence) (int64, error) {
	return o.NextNumbers(ctx, seq, 1)
}

// NextNumbers implements driver.Tx. Outside a transaction it runs in a
// short one of its own, so the increment and the read see one row version.
func (o *ops) NextNumbers(ctx context.Context, seq driver.Sequence, n int) (int64, error) {
	if seq == "" || n < 1 {
		return 0, errors.New("gormstore: empty sequence name or count below 1")
	}
	if o.tx != nil {
		return o.next(ctx, seq, n)
	}
	var first int64
	err := o.s.Atomic(ctx, func(tx driver.Tx) error {
		var err error
		first, err = tx.(*ops).next(ctx, seq, n)
		return err
	})
	return first, err
}

// next reserves n numbers of seq and returns the first.
func (o *ops) next(ctx context.Context, seq driver.Sequence, n int) (int64, error) {
	db := o.with(ctx)
	for range 2 {
		res := db.Exec("UPDATE clm_sequences SET value = value + ? WHERE name = ?", n, string(seq))
		if res.Error != nil {
			return 0, o.s.wrap(res.Error)
		}
		if res.RowsAffected == 1 {
			var v int64
			if err := db.Raw("SELECT value FROM clm_sequences WHERE name = ?", string(seq)).Scan(&v).Error; err != nil {
				return 0, o.s.wrap(err)
			}
			return v - int64(n) + 1, nil
		}
		// A sequence the schema did not seed: create it, then increment.
		if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&sequenceRow{Name: string(seq)}).Error; err != nil {
			return 0, o.s.wrap(err)
		}
	}
	return 0, fmt.Errorf("gormstore: sequence %q cannot be created", seq)
}

func (o *ops) CreatePSK(ctx context.Context, r *driver.PSKRecord) error {
	return o.s.wrap(o.with(ctx).Create(toPSKRow(r)).Error)
}

func (o *ops) GetPSK(ctx context.Context, keyID int64) (*driver.PSKRecord, error) {
	var row pskRow
	if err := o.queryRow(ctx, "SELECT "+pskColumns+" FROM clm_psks WHERE key_id = ?", []any{keyID}, row.fields()...); err != nil {
		return nil, err
	}
	return row.record(), nil
}

func (o *ops) ListPSKs(ctx context.Context, q driver.PSKQuery) ([]*driver.PSKRecord, error) {
	if q.Limit <= 0 {
		return nil, errors.New("gormstore: ListPSKs: limit must be positive")
	}
	db := o.with(ctx).Where("key_id > ?", q.After)
	if q.Tenant != "" {
		db = db.Where("tenant = ?", q.Tenant)
	}
	var rows []pskRow
	if err := db.Order("key_id").Limit(q.Limit).Find(&rows).Error; err != nil {
		return nil, o.s.wrap(err)
	}
	out := make([]*driver.PSKRecord, len(rows))
	for i := range rows {
		out[i] = rows[i].record()
	}
	return out, nil
}

// affected turns an UPDATE or DELETE result into ErrNotFound when no row
// matched. (MySQL openers set clientFoundRows, so an UPDATE that matches a
// row but changes nothing still counts it.)
func (o *ops) affected(res *gorm.DB) error {
	if res.Error != nil {
		return o.s.wrap(res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("gormstore: %w", driver.ErrNotFound)
	}
	return nil
}

func (o *ops) SetPSKStatus(ctx context.Context, keyID int64, st lifecycle.PSKStatus) error {
	return o.affected(o.with(ctx).Model(&pskRow{}).Where("key_id = ?", keyID).Update("status", int(st)))
}

func (o *ops) DeletePSK(ctx context.Context, keyID int64) error {
	if err := o.affected(o.with(ctx).Where("key_id = ?", keyID).Delete(&pskRow{})); err != nil {
		return err
	}
	// Its failure counts go with it; left behind, they would only be dead rows.
	return o.s.wrap(o.with(ctx).Where("key_id = ?", keyID).Delete(&authFailureRow{}).Error)
}

func (o *ops) CreateDevice(ctx context.Context, r *driver.DeviceRecord) error {
	row, err := toDeviceRow(r)
	if err != nil {
		return err
	}
	return o.s.wrap(o.with(ctx).Create(row).Error)
}

func (o *ops) getDevice(ctx context.Context, where string, args ...any) (*driver.DeviceRecord, error) {
	var row deviceRow
	if err := o.queryRow(ctx, "SELECT "+deviceColumns+" FROM clm_devices WHERE "+where, args, row.fields()...); err != nil {
		return nil, err
	}
	r, err := row.record()
	if err != nil {
		return nil, fmt.Errorf("gormstore: device ext_data: %w", err)
	}
	return r, nil
}

func (o *ops) GetDevice(ctx context.Context, tenant, id string) (*driver.DeviceRecord, error) {
	return o.getDevice(ctx, "tenant = ? AND id = ?", tenant, id)
}

func (o *ops) GetDeviceByName(ctx context.Context, tenant, name string) (*driver.DeviceRecord, error) {
	return o.getDevice(ctx, "tenant = ? AND name = ?", tenant, name)
}

func (o *ops) ListDevices(ctx context.Context, q driver.DeviceQuery) ([]*driver.DeviceRecord, error) {
	if q.Limit <= 0 {
		return nil, errors.New("gormstore: ListDevices: limit must be positive")
	}
	var rows []deviceRow
	err := o.with(ctx).Where("tenant = ? AND id > ?", q.Tenant, q.After).Order("id").Limit(q.Limit).Find(&rows).Error
	if err != nil {
		return nil, o.s.wrap(err)
	}
	out := make([]*driver.DeviceRecord, len(rows))
	for i := range rows {
		r, err := rows[i].record()
		if err != nil {
			return nil, fmt.Errorf("gormstore: device ext_data: %w", err)
		}
		out[i] = r
	}
	return out, nil
}

func (o *ops) UpdateDevice(ctx context.Context, r *driver.DeviceRecord) error {
	row, err := toDeviceRow(r)
	if err != nil {
		return err
	}
	return o.affected(o.with(ctx).Model(&deviceRow{}).Where("tenant = ? AND id = ?", r.Tenant, r.ID).Updates(map[string]any{
		"status":      row.Status,
		"ip_address":  row.IPAddress,
		"mac_address": row.MACAddress,
		"ext_data":    row.ExtData,
		"updated_at":  row.UpdatedAt,
		"expires_at":  row.ExpiresAt,
	}))
}

var insertCredential = insertQuery("clm_credentials", credentialColumns, 1)

func (o *ops) CreateCredential(ctx context.Context, r *driver.CredentialRecord) error {
	return o.exec(ctx, insertCredential, valuesOf(toCredentialRow(r).fields())...)
}

func (o *ops) getCredential(ctx context.Context, where string, args ...any) (*driver.CredentialRecord, error) {
	var row credentialRow
	if err := o.queryRow(ctx, "SELECT "+credentialColumns+" FROM clm_credentials WHERE "+where, args, row.fields()...); err != nil {
		return nil, err
	}
	return row.record(), nil
}

func (o *ops) GetCredential(ctx context.Context, keyNumber int64) (*driver.CredentialRecord, error) {
	return o.getCredential(ctx, "key_number = ?", keyNumber)
}

func (o *ops) GetCredentialBySerial(ctx context.Context, ca, serial string) (*driver.CredentialRecord, error) {
	return o.getCredential(ctx, "ca = ? AND serial = ?", ca, serial)
}

func (o *ops) ListCredentials(ctx context.Context, q driver.CredentialQuery) ([]*driver.CredentialRecord, error) {
	if q.Limit <= 0 {
		return nil, errors.New("gormstore: ListCredentials: limit must be positive")
	}
	db := o.credentialsWhere(ctx, q).Where("key_number > ?", q.After)
	var rows []credentialRow
	if err := db.Order("key_number").Limit(q.Limit).Find(&rows).Error; err != nil {
		return nil, o.s.wrap(err)
	}
	out := make([]*driver.CredentialRecord, len(rows))
	for i := range rows {
		out[i] = rows[i].record()
	}
	return out, nil
}

func (o *ops) CredentialStats(ctx context.Context, q driver.CredentialQuery) (driver.CredentialStats, error) {
	var row struct {
		N    int64
		Last int64
	}
	err := o.credentialsWhere(ctx, q).Model(&credentialRow{}).
		Select("COUNT(*) AS n, COALESCE(MAX(state_changed_at), 0) AS last").Scan(&row).Error
	if err != nil {
		return driver.CredentialStats{}, o.s.wrap(err)
	}
	st := driver.CredentialStats{Count: row.N}
	if row.N > 0 {
		st.LastStateChange = fromMicros(row.Last)
	}
	return st, nil
}

// credentialsWhere applies the filters of q but its cursor and limit.
func (o *ops) credentialsWhere(ctx context.Context, q driver.CredentialQuery) *gorm.DB {
	db := o.with(ctx)
	if q.Tenant != "" {
		db = db.Where("tenant = ?", q.Tenant)
	}
	if q.CA != "" {
		db = db.Where("ca = ?", q.CA)
	}
	if q.Kind != 0 {
		db = db.Where("kind = ?", int(q.Kind))
	}
	if len(q.States) > 0 {
		st := make([]int, len(q.States))
		for i, s := range q.States {
			st[i] = int(s)
		}
		db = db.Where("state IN ?", st)
	}
	if q.DeviceID != "" {
		db = db.Where("key_number IN (SELECT key_number FROM clm_bindings WHERE tenant = ? AND device_id = ?)", q.Tenant, q.DeviceID)
	}
	if !q.ExpiresBefore.IsZero() {
		db = db.Where("not_after < ?", micros(q.ExpiresBefore))
	}
	if !q.ExpiresAfter.IsZero() {
		db = db.Where("not_after >= ?", micros(q.ExpiresAfter))
	}
	return db
}

func (o *ops) TransitionCredential(ctx context.Context, t driver.Transition) error {
	if t.From == t.To {
		return errors.New("gormstore: a transition must change the state")
	}
	res := o.with(ctx).Model(&credentialRow{}).
		Where("key_number = ? AND state = ?", t.KeyNumber, int(t.From)).
		Updates(map[string]any{
			"state":            int(t.To),
			"state_changed_at": micros(t.At),
			"reason":           t.Reason,
			"replaced_by":      t.ReplacedBy,
		})
	if res.Error != nil {
		return o.s.wrap(res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	return o.missingOrConflict(ctx, &credentialRow{}, "key_number = ?", t.KeyNumber)
}

func (o *ops) DeleteCredential(ctx context.Context, keyNumber int64) error {
	run := func(o *ops) error {
		db := o.with(ctx)
		if err := db.Where("key_number = ?", keyNumber).Delete(&bindingRow{}).Error; err != nil {
			return o.s.wrap(err)
		}
		if err := db.Where("key_number = ?", keyNumber).Delete(&noticeRow{}).Error; err != nil {
			return o.s.wrap(err)
		}
		res := db.Where("key_number = ?", keyNumber).Delete(&credentialRow{})
		if res.Error != nil {
			return o.s.wrap(res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("gormstore: %w", driver.ErrNotFound)
		}
		return nil
	}
	if o.tx != nil {
		return run(o)
	}
	return o.s.Atomic(ctx, func(tx driver.Tx) error { return run(tx.(*ops)) })
}

func (o *ops) PutNotice(ctx context.Context, r *driver.NoticeRecord) (bool, error) {
	if len(r.Kind) == 0 || len(r.Kind) > 32 {
		return false, errors.New("gormstore: PutNotice: a kind is 1 to 32 bytes")
	}
	// ON CONFLICT DO NOTHING, never a failed INSERT, which would abort a
	// PostgreSQL transaction. MySQL's INSERT IGNORE: its ON DUPLICATE KEY
	// UPDATE would count the row found (clientFoundRows) as one affected.
	q := "INSERT INTO clm_notices (key_number, kind, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
	if o.s.dialect.Name == "mysql" {
		q = "INSERT IGNORE INTO clm_notices (key_number, kind, at) VALUES (?, ?, ?)"
	}
	res := o.with(ctx).Exec(q, r.KeyNumber, r.Kind, micros(r.At))
	if res.Error != nil {
		return false, o.s.wrap(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// missingOrConflict tells why a compare-and-swap matched no row.
func (o *ops) missingOrConflict(ctx context.Context, model any, where string, args ...any) error {
	var n int64
	if err := o.with(ctx).Model(model).Where(where, args...).Count(&n).Error; err != nil {
		return o.s.wrap(err)
	}
	if n == 0 {
		return fmt.Errorf("gormstore: %w", driver.ErrNotFound)
	}
	return fmt.Errorf("gormstore: %w", driver.ErrConflict)
}

// maxBindingsPerInsert bounds the rows of one INSERT of bindings (one
// prepared statement per count).
const maxBindingsPerInsert = 4

// insertBindings[n] is the INSERT of n bindings, but its ending (by dialect).
var insertBindings = func() (q [maxBindingsPerInsert + 1]string) {
	for n := 1; n <= maxBindingsPerInsert; n++ {
		q[n] = insertQuery("clm_bindings", bindingColumns, n)
	}
	return q
}()

func (o *ops) PutBinding(ctx context.Context, rs ...*driver.BindingRecord) error {
	if o.tx == nil && len(rs) > maxBindingsPerInsert {
		// More than one statement: all of them or none.
		return o.s.Atomic(ctx, func(tx driver.Tx) error { return tx.PutBinding(ctx, rs...) })
	}
	for len(rs) > 0 {
		n := min(len(rs), maxBindingsPerInsert)
		args := make([]any, 0, n*6)
		for _, r := range rs[:n] {
			args = append(args, valuesOf(toBindingRow(r).fields()[1:])...) // all but the generated id
		}
		// ON CONFLICT DO NOTHING, not a failed INSERT: in PostgreSQL a
		// failed statement would abort the surrounding transaction.
		if err := o.exec(ctx, insertBindings[n]+o.s.dialect.onConflictDoNothing(), args...); err != nil {
			return err
		}
		rs = rs[n:]
	}
	return nil
}

// bindings runs a query of bindings.
func (o *ops) bindings(ctx context.Context, where string, args ...any) ([]*driver.BindingRecord, error) {
	var out []*driver.BindingRecord
	err := o.query(ctx, "SELECT id, "+bindingColumns+" FROM clm_bindings WHERE "+where, args, func(rows *sql.Rows) error {
		var row bindingRow
		if err := rows.Scan(row.fields()...); err != nil {
			return err
		}
		out = append(out, row.record())
		return nil
	})
	return out, err
}

func (o *ops) ListBindings(ctx context.Context, tenant, deviceID string, keyNumber int64) ([]*driver.BindingRecord, error) {
	return o.bindings(ctx, "tenant = ? AND device_id = ? AND key_number = ? ORDER BY created_at, id", tenant, deviceID, keyNumber)
}

func (o *ops) BindingsOf(ctx context.Context, keyNumber int64) ([]*driver.BindingRecord, error) {
	return o.bindings(ctx, "key_number = ? ORDER BY created_at, id", keyNumber)
}

func (o *ops) BindingsAt(ctx context.Context, tenant, deviceID, path string, limit int) ([]*driver.BindingRecord, error) {
	if limit <= 0 {
		return nil, errors.New("gormstore: BindingsAt: limit must be positive")
	}
	bs, err := o.bindings(ctx, "tenant = ? AND device_id = ? AND path_hash = ? ORDER BY created_at DESC, id DESC LIMIT ?",
		tenant, deviceID, pathHash(path), limit)
	if err != nil {
		return nil, err
	}
	out := bs[:0]
	for _, b := range bs {
		if b.Path == path { // a hash collision is not the path
			out = append(out, b)
		}
	}
	return out, nil
}

// sealedColumns says where each kind of sealed value lives: the table,
// the column, the columns that name the record (in cursor order), and the
// column of the credential kind, if any.
var sealedColumns = map[driver.SealedKind]struct {
	model  any
	column string
	keys   []string
	kind   string
}{
	driver.SealedPSKPassword:      {&pskRow{}, "password", []string{"key_id"}, ""},
	driver.SealedCredentialSecret: {&credentialRow{}, "secret", []string{"key_number"}, "kind"},
	driver.SealedDeviceKey:        {&deviceRow{}, "key_hash", []string{"tenant", "id"}, ""},
}

// sealedKey is the values of a sealed value's record-naming columns.
func sealedKey(v driver.SealedValue) []any {
	if v.Kind == driver.SealedDeviceKey {
		return []any{v.Tenant, v.DeviceID}
	}
	return []any{v.ID}
}

func (o *ops) ListSealed(ctx context.Context, kind driver.SealedKind, after driver.SealedValue, limit int) ([]driver.SealedValue, error) {
	c, ok := sealedColumns[kind]
	if !ok || limit <= 0 {
		return nil, fmt.Errorf("gormstore: ListSealed: unknown kind %d or bad limit", kind)
	}
	var rows []struct {
		ID       int64
		Tenant   string
		DeviceID string
		Kind     int
		Value    []byte
	}
	sel := "tenant, " + c.column + " AS value"
	switch kind {
	case driver.SealedDeviceKey:
		sel += ", id AS device_id"
	default:
		sel += ", " + c.keys[0] + " AS id"
	}
	if c.kind != "" {
		sel += ", " + c.kind + " AS kind"
	}
	db := o.with(ctx).Model(c.model).Select(sel).Where(c.column + " IS NOT NULL")
	after.Kind = kind
	if ak := sealedKey(after); len(c.keys) == 1 {
		db = db.Where(c.keys[0]+" > ?", ak[0])
	} else {
		db = db.Where("("+c.keys[0]+" > ? OR ("+c.keys[0]+" = ? AND "+c.keys[1]+" > ?))", ak[0], ak[0], ak[1])
	}
	for _, k := range c.keys {
		db = db.Order(k)
	}
	if err := db.Limit(limit).Scan(&rows).Error; err != nil {
		return nil, o.s.wrap(err)
	}
	out := make([]driver.SealedValue, 0, len(rows))
	for _, r := range rows {
		if len(r.Value) == 0 {
			continue
		}
		out = append(out, driver.SealedValue{Kind: kind, ID: r.ID, Tenant: r.Tenant, DeviceID: r.DeviceID,
			CredentialKind: driver.CredentialKind(r.Kind), Value: r.Value})
	}
	return out, nil
}

func (o *ops) ReplaceSealed(ctx context.Context, v driver.SealedValue, value []byte) error {
	c, ok := sealedColumns[v.Kind]
	if !ok {
		return fmt.Errorf("gormstore: ReplaceSealed: unknown kind %d", v.Kind)
	}
	where := ""
	for i, k := range c.keys {
		if i > 0 {
			where += " AND "
		}
		where += k + " = ?"
	}
	args := sealedKey(v)
	res := o.with(ctx).Model(c.model).Where(where+" AND "+c.column+" = ?", append(args, v.Value)...).Update(c.column, value)
	if res.Error != nil {
		return o.s.wrap(res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	return o.missingOrConflict(ctx, c.model, where, args...)
}

func (o *ops) CountAuthFailures(ctx context.Context, fs ...driver.AuthFailure) ([]*driver.AuthFailures, error) {
	if o.tx == nil {
		var out []*driver.AuthFailures
		err := o.s.Atomic(ctx, func(tx driver.Tx) error {
			var err error
			out, err = tx.CountAuthFailures(ctx, fs...)
			return err
		})
		return out, err
	}
	for _, f := range fs {
		if f.Limit < 1 || f.Window <= 0 || len(f.Client) > 64 {
			return nil, errors.New("gormstore: CountAuthFailures: a limit below 1, a window not positive, or a client over 64 bytes")
		}
	}
	db := o.with(ctx)
	out := make([]*driver.AuthFailures, 0, len(fs))
	until := map[int64]int64{} // the FailuresUntil each PSK is raised to
	for _, f := range fs {
		err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&authFailureRow{KeyID: f.KeyID, Client: f.Client}).Error
		if err != nil {
			return nil, o.s.wrap(err)
		}
		q := db.Where("key_id = ? AND client = ?", f.KeyID, f.Client)
		if o.s.dialect.Name != "sqlite" { // SQLite's write transactions are exclusive already
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		var row authFailureRow
		if err := q.Take(&row).Error; err != nil {
			return nil, o.s.wrap(err)
		}
		at, window := micros(f.At), f.Window.Microseconds()
		if at >= row.Since+window { // a new pair (Since 0) too
			row.Count, row.Since = 1, at
		} else {
			row.Count++
		}
		if row.Count >= f.Limit {
			row.LockedUntil, row.Count, row.Since = at+window, 0, at
		}
		err = db.Model(&authFailureRow{}).Where("key_id = ? AND client = ?", f.KeyID, f.Client).
			Updates(map[string]any{"count": row.Count, "since": row.Since, "locked_until": row.LockedUntil}).Error
		if err != nil {
			return nil, o.s.wrap(err)
		}
		until[f.KeyID] = max(until[f.KeyID], at+window)
		out = append(out, row.record())
	}
	for id, u := range until { // once per PSK, not once per pair counted
		if err := db.Model(&pskRow{}).Where("key_id = ? AND failures_until < ?", id, u).Update("failures_until", u).Error; err != nil {
			return nil, o.s.wrap(err)
		}
	}
	return out, nil
}

func (o *ops) GetAuthFailures(ctx context.Context, keyID int64, clients ...string) ([]*driver.AuthFailures, error) {
	if len(clients) == 0 {
		return nil, nil
	}
	var rows []authFailureRow
	if err := o.with(ctx).Where("key_id = ? AND client IN ?", keyID, clients).Order("client").Find(&rows).Error; err != nil {
		return nil, o.s.wrap(err)
	}
	out := make([]*driver.AuthFailures, len(rows))
	for i := range rows {
		out[i] = rows[i].record()
	}
	return out, nil
}

func (o *ops) ClearAuthFailures(ctx context.Context, keyID int64, client string) error {
	return o.s.wrap(o.with(ctx).Where("key_id = ? AND client = ?", keyID, client).Delete(&authFailureRow{}).Error)
}
