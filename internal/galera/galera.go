// Package galera starts a MariaDB Galera cluster on loopback for tests: 3
// nodes of the system's mariadbd with the galera-4 provider, each with its
// own data directory (mariadb-install-db), client port, group and IST
// ports, rsync state transfers, started as the mysql user under its own pid
// file. Start waits until every node reports Synced; Stop (a test cleanup)
// stops only what Start started. Without galera-4 the test is skipped,
// except under CI=true, where it fails (.ci/run installs galera-4 and
// rsync).
package galera

import (
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // database/sql driver "mysql"
)

// Provider is where Debian's galera-4 package puts the wsrep provider.
const Provider = "/usr/lib/galera/libgalera_smm.so"

// Node is one mariadbd of the cluster.
type Node struct {
	Index int
	Port  int    // the client port
	Dir   string // the data directory
	group int    // gmcast port; IST is group+1, SST group+2
	c     *Cluster
	cmd   *exec.Cmd
	done  chan struct{}
}

// Cluster is a running Galera cluster.
type Cluster struct {
	Nodes []*Node
	dir   string
	ports []int // per node: client, group, IST, SST
	t     testing.TB
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// Start starts a cluster of n nodes and waits until all are Synced; it is
// stopped when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	for _, need := range []string{"/usr/sbin/mariadbd", Provider} {
		if _, err := os.Stat(need); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("Galera tests need %s (.ci/run installs galera-4)", need)
			}
			t.Skipf("no %s", need)
		}
	}
	for _, tool := range []string{"mariadb-install-db", "rsync"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("Galera tests need %s", tool)
			}
			t.Skipf("no %s", tool)
		}
	}
	// The nodes run as the mysql user (so that rsync's daemon, which the
	// joiner starts, may write): their directories must be theirs.
	dir, err := os.MkdirTemp("", "clm-galera-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{dir: dir, t: t}
	t.Cleanup(c.stop)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 4*n)
	for i := range n {
		nd := &Node{Index: i, Port: ports[4*i], group: ports[4*i+1], Dir: filepath.Join(dir, "n"+strconv.Itoa(i)), c: c}
		c.Nodes = append(c.Nodes, nd)
		out, err := exec.Command("mariadb-install-db", "--no-defaults", "--datadir="+nd.Dir, "--auth-root-authentication-method=normal", "--user="+runAs()).CombinedOutput()
		if err != nil {
			t.Fatalf("mariadb-install-db: %v\n%s", err, out)
		}
	}
	c.ports = ports
	for i, nd := range c.Nodes {
		if err := nd.start(i == 0); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := nd.WaitSynced(60 * time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, nd := range c.Nodes {
		if err := nd.WaitSynced(90 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// runAs is the user the nodes run as: mysql when the tests run as root.
func runAs() string {
	if u, err := user.Current(); err == nil && u.Uid != "0" {
		return u.Username
	}
	return "mysql"
}

func (nd *Node) ist() int { return nd.c.ports[4*nd.Index+2] }
func (nd *Node) sst() int { return nd.c.ports[4*nd.Index+3] }

// start runs mariadbd for the node; the first node of a new cluster
// bootstraps it.
func (nd *Node) start(bootstrap bool) error {
	var members []string
	for _, o := range nd.c.Nodes {
		members = append(members, "127.0.0.1:"+strconv.Itoa(o.group))
	}
	args := []string{"--no-defaults", "--user=" + runAs(), "--datadir=" + nd.Dir, "--socket=" + filepath.Join(nd.Dir, "sock"),
		"--port=" + strconv.Itoa(nd.Port), "--bind-address=127.0.0.1", "--pid-file=" + filepath.Join(nd.Dir, "mariadbd.pid"),
		"--log-error=" + filepath.Join(nd.Dir, "error.log"),
		"--wsrep-on=ON", "--wsrep-provider=" + Provider, "--wsrep-cluster-name=clmtest",
		"--wsrep-cluster-address=gcomm://" + strings.Join(members, ","),
		"--wsrep-node-address=127.0.0.1:" + strconv.Itoa(nd.group),
		fmt.Sprintf("--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:%d;ist.recv_addr=127.0.0.1:%d", nd.group, nd.ist()),
		"--wsrep-sst-method=rsync", "--wsrep-sst-receive-address=127.0.0.1:" + strconv.Itoa(nd.sst()),
		"--binlog-format=ROW", "--default-storage-engine=InnoDB", "--innodb-autoinc-lock-mode=2",
		"--innodb-buffer-pool-size=64M", "--max-connections=300"}
	if bootstrap {
		args = append(args, "--wsrep-new-cluster")
	}
	cmd := exec.Command("/usr/sbin/mariadbd", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its rsync children go with it
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("galera: node %d: %w", nd.Index, err)
	}
	nd.cmd, nd.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(nd.done) }()
	return nil
}

// DSN is a DSN of the node (database name db, created on first use by the
// caller).
func (nd *Node) DSN(db string) string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/%s", nd.Port, db)
}

// DSN is a multi-node DSN of the cluster listing the nodes in the order
// given (all nodes in order when none is given).
func (c *Cluster) DSN(db string, order ...int) string {
	if len(order) == 0 {
		for i := range c.Nodes {
			order = append(order, i)
		}
	}
	var addrs []string
	for _, i := range order {
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(c.Nodes[i].Port))
	}
	return fmt.Sprintf("root@tcp(%s)/%s", strings.Join(addrs, ","), db)
}

// Exec runs statements on a node.
func (nd *Node) Exec(stmts ...string) error {
	db, err := sql.Open("mysql", nd.DSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			return fmt.Errorf("galera: node %d: %s: %w", nd.Index, s, err)
		}
	}
	return nil
}

// State is the node's wsrep_local_state_comment ("Synced", "Joining",
// ...), or an error when it does not answer.
func (nd *Node) State() (string, error) {
	db, err := sql.Open("mysql", nd.DSN("")+"?timeout=2s")
	if err != nil {
		return "", err
	}
	defer db.Close()
	var name, value string
	err = db.QueryRow("SHOW STATUS LIKE 'wsrep_local_state_comment'").Scan(&name, &value)
	return value, err
}

// WaitSynced waits until the node reports Synced.
func (nd *Node) WaitSynced(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := nd.State()
		if err == nil && st == "Synced" {
			return nil
		}
		select {
		case <-nd.done:
			log, _ := os.ReadFile(filepath.Join(nd.Dir, "error.log"))
			return fmt.Errorf("galera: node %d exited while starting:\n%s", nd.Index, tail(string(log), 3000))
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(nd.Dir, "error.log"))
			return fmt.Errorf("galera: node %d not Synced after %v (state %q, %v):\n%s", nd.Index, limit, st, err, tail(string(log), 3000))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Kill kills the node with SIGKILL (a crash) and waits for it to be gone.
func (nd *Node) Kill() {
	if nd.cmd == nil {
		return
	}
	_ = syscall.Kill(-nd.cmd.Process.Pid, syscall.SIGKILL)
	<-nd.done
	nd.cmd = nil
}

// Restart starts a killed node again; it rejoins the cluster (IST) and is
// Synced when Restart returns.
func (nd *Node) Restart(limit time.Duration) error {
	if nd.cmd != nil {
		return fmt.Errorf("galera: node %d is running", nd.Index)
	}
	if err := nd.start(false); err != nil {
		return err
	}
	return nd.WaitSynced(limit)
}

// stop stops the nodes Start started (SIGTERM, then SIGKILL) and removes
// their directories.
func (c *Cluster) stop() {
	for _, nd := range c.Nodes {
		if nd.cmd == nil {
			continue
		}
		_ = syscall.Kill(-nd.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-nd.done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-nd.cmd.Process.Pid, syscall.SIGKILL)
			<-nd.done
		}
	}
	_ = os.RemoveAll(c.dir)
}

// CreateDatabase creates a database on the cluster (replicated to every
// node).
func (c *Cluster) CreateDatabase(name string) error {
	return c.Nodes[0].Exec("CREATE DATABASE IF NOT EXISTS `" + name + "`")
}
