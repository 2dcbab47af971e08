package galera_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credlife/clm/internal/galera"
)

// TestClusterReplicatesAndRejoins: a write on one node is read on another;
// a node killed with SIGKILL leaves the others Synced, and rejoins (IST)
// with what was written meanwhile.
func TestClusterReplicatesAndRejoins(t *testing.T) {
	c := galera.Start(t, 3)
	require.NoError(t, c.CreateDatabase("h"))
	require.NoError(t, c.Nodes[0].Exec("CREATE TABLE h.t (id INT PRIMARY KEY, v TEXT)", "INSERT INTO h.t VALUES (1, 'one')"))
	read := func(n *galera.Node, id int) string {
		t.Helper()
		db, err := sql.Open("mysql", n.DSN("h"))
		require.NoError(t, err)
		defer db.Close()
		var v string
		require.NoError(t, db.QueryRow("SELECT v FROM t WHERE id = ?", id).Scan(&v))
		return v
	}
	assert.Equal(t, "one", read(c.Nodes[2], 1))
	c.Nodes[1].Kill()
	for _, n := range []*galera.Node{c.Nodes[0], c.Nodes[2]} {
		st, err := n.State()
		require.NoError(t, err)
		assert.Equal(t, "Synced", st)
	}
	require.NoError(t, c.Nodes[2].Exec("INSERT INTO h.t VALUES (2, 'two')"))
	require.NoError(t, c.Nodes[1].Restart(90*time.Second))
	assert.Equal(t, "two", read(c.Nodes[1], 2), "the rejoined node has what was written meanwhile")
}
