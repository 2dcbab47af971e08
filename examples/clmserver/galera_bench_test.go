package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credlife/clm/httpadapter/client"
	"github.com/credlife/clm/internal/galera"
	"github.com/credlife/clm/internal/testdb"
	"github.com/credlife/clm/lifecycle"
)

// BenchmarkScaleOut measures the standard HTTP mix (psk-auth 4,
// cert-issue 1, cert-get 2, key-create 1, key-get 2) from 16 clients
// spread over 1, 2 and 3 clmserver processes, each on its own node of a
// 3-node Galera cluster, and over one server on the machine's MariaDB
// without Galera (the cost of replication). b.N is the number of
// requests; the figure is req/s:
//
//	go test ./examples/clmserver -run '^$' -bench ScaleOut -benchtime 3000x
func BenchmarkScaleOut(b *testing.B) {
	bin := buildServer(b)
	b.Run("single-mariadb/servers=1", func(b *testing.B) {
		url := startProcess(b, bin, "mysql:"+testdb.MySQL(b))
		runMix(b, []string{url})
	})
	c := galera.Start(b, 3)
	for n := 1; n <= 3; n++ {
		b.Run(fmt.Sprintf("galera/servers=%d", n), func(b *testing.B) {
			db := fmt.Sprintf("bench%d_%d", n, time.Now().UnixNano()%1e6)
			if err := c.CreateDatabase(db); err != nil {
				b.Fatal(err)
			}
			var urls []string
			for i := range n {
				order := []int{i, (i + 1) % 3, (i + 2) % 3}
				urls = append(urls, startProcess(b, bin, "mysql:"+c.DSN(db, order...)))
			}
			runMix(b, urls)
		})
	}
}

// runMix runs b.N requests of the standard mix from 16 clients spread over
// the servers and reports req/s.
func runMix(b *testing.B, urls []string) {
	ctx := context.Background()
	const clients = 16
	type actor struct {
		cl    *client.Client
		creds lifecycle.PSKCredentials
		dev   lifecycle.DeviceRequest
		cert  int64
		key   int64
	}
	actors := make([]*actor, clients)
	for i := range clients {
		cl := client.New(urls[i%len(urls)], "race-license-0123456789", nil)
		p, err := cl.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: fmt.Sprint("bench", i), Alias: "a"})
		if err != nil {
			b.Fatal(err)
		}
		a := &actor{cl: cl, creds: lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}}
		res, err := cl.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: a.creds, Device: lifecycle.DeviceRequest{Name: "d"}, CA: "ca1",
			Subject: "/CN=d", KeyPath: "/k", Path: "/c", CAPath: "/ca"})
		if err != nil {
			b.Fatal(err)
		}
		a.dev, a.cert = lifecycle.DeviceRequest{ID: res.Device.Device.ID, Name: "d", Key: res.Device.Key}, res.Certificate.KeyNumber
		k, err := cl.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: a.creds, Device: a.dev, Alias: "k", KeyType: "AES", KeyPath: "/k", Path: "/key"})
		if err != nil {
			b.Fatal(err)
		}
		a.key = k.KeyNumber
		actors[i] = a
	}
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, rng := actors[i], rand.New(rand.NewPCG(uint64(i), 1))
			for next.Add(1) <= int64(b.N) {
				var err error
				switch w := rng.IntN(10); {
				case w < 4:
					_, err = a.cl.AuthenticatePSK(ctx, a.creds)
				case w < 5:
					_, err = a.cl.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: a.creds, Device: a.dev, CA: "ca1", Subject: "/CN=d", KeyPath: "/k", Path: "/c", CAPath: "/ca"})
				case w < 7:
					_, err = a.cl.GetCertificate(ctx, lifecycle.GetCertificateRequest{PSK: a.creds, Device: a.dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: a.cert}, Path: "/c"})
				case w < 8:
					_, err = a.cl.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: a.creds, Device: a.dev, Alias: "k", KeyType: "AES", KeyPath: "/k", Path: fmt.Sprint("/key", rng.Int())})
				default:
					_, err = a.cl.GetKey(ctx, lifecycle.GetKeyRequest{PSK: a.creds, Device: a.dev, KeyNumber: a.key, Path: "/key"})
				}
				if err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if errs.Load() > 0 {
		b.Fatalf("%d of %d requests failed", errs.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}
