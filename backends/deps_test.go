package backends_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOpenersLinkOnlyTheirDriver: importing one opener must not link the
// other databases' drivers, and importing lifecycle must link none.
func TestOpenersLinkOnlyTheirDriver(t *testing.T) {
	drivers := map[string]string{
		"sqlite":   "github.com/mattn/go-sqlite3",
		"mysql":    "github.com/go-sql-driver/mysql",
		"postgres": "github.com/jackc/pgx/v5",
	}
	pkgs := map[string]string{
		"github.com/credlife/clm/lifecycle":              "",
		"github.com/credlife/clm/backends/gormstore":     "",
		"github.com/credlife/clm/backends/memstore":      "",
		"github.com/credlife/clm/backends/sqlitestore":   "sqlite",
		"github.com/credlife/clm/backends/mysqlstore":    "mysql",
		"github.com/credlife/clm/backends/postgresstore": "postgres",
	}
	for pkg, own := range pkgs {
		t.Run(pkg[strings.LastIndex(pkg, "/")+1:], func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", pkg).Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			deps := string(out)
			for name, drv := range drivers {
				linked := strings.Contains(deps, drv+"\n") || strings.Contains(deps, drv+"/")
				if name == own && !linked {
					t.Errorf("%s should link its driver %s", pkg, drv)
				}
				if name != own && linked {
					t.Errorf("%s links %s, another database's driver", pkg, drv)
				}
			}
		})
	}
}
