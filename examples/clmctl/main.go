// Command clmctl is the operator's CLI over clm's admin API (package
// httpadapter/admin, served by examples/clmserver with -admin-token-file):
// tenants, PSKs, devices, the credential inventory, decommissioning and
// revocation, CAs; tables or JSON; bulk work from a file with a progress
// bar, a summary, and resumption after an interruption.
//
//	export CLM_SERVER=https://clm.example.com CLM_ADMIN_TOKEN=$(cat admin.token)
//	clmctl credentials list --tenant acme --expiring-within 720h
//	clmctl devices decommission acme dev-42 --reason keyCompromise
//	clmctl devices decommission acme --from-file stolen.txt     # one device id per line
//	clmctl credentials revoke acme --serials-file serials.txt --reason superseded
//	clmctl completion bash > /etc/bash_completion.d/clmctl
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		os.Exit(1)
	}
}

// app is the state every command shares.
type app struct {
	server, tokenFile, caFile, output string
	out, errOut                       io.Writer
	api                               *client
}

// newRoot builds the command tree; out and errOut receive what commands
// print (tests pass buffers).
func newRoot(out, errOut io.Writer) *cobra.Command {
	a := &app{out: out, errOut: errOut}
	root := &cobra.Command{
		Use:           "clmctl",
		Short:         "Operate a clm server through its admin API",
		SilenceUsage:  true,
		SilenceErrors: false,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Name() == "completion" || cmd.HasParent() && cmd.Parent().Name() == "completion" {
				return nil
			}
			if a.output != "table" && a.output != "json" {
				return fmt.Errorf("--output must be table or json")
			}
			var err error
			a.api, err = newClient(a.server, a.tokenFile, a.caFile)
			return err
		},
	}
	root.SetOut(out)
	root.SetErr(errOut)
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", envOr("CLM_SERVER", "http://127.0.0.1:8080"), "the server's base URL (CLM_SERVER)")
	pf.StringVar(&a.tokenFile, "token-file", os.Getenv("CLM_ADMIN_TOKEN_FILE"), "file holding the admin token (CLM_ADMIN_TOKEN_FILE; or the token itself in CLM_ADMIN_TOKEN)")
	pf.StringVar(&a.caFile, "cacert", os.Getenv("CLM_CACERT"), "CA certificate to trust for an HTTPS server (CLM_CACERT)")
	pf.StringVarP(&a.output, "output", "o", "table", "table or json")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))

	root.AddCommand(a.tenantsCmd(), a.psksCmd(), a.devicesCmd(), a.credentialsCmd(), a.casCmd())
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (a *app) tenantsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tenants", Short: "Tenants (those that hold PSKs)"}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List the tenants", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct {
				Tenants []string `json:"tenants"`
			}
			if err := a.api.do(cmd.Context(), "GET", "tenants", nil, &r); err != nil {
				return err
			}
			return a.print(r, []string{"TENANT"}, func(row func(...any)) {
				for _, t := range r.Tenants {
					row(t)
				}
			})
		},
	})
	return cmd
}

func (a *app) psksCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "psks", Short: "PSKs (ID and password) of the tenants"}
	var tenant, alias string
	list := &cobra.Command{
		Use: "list", Short: "List PSKs (without passwords)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var all []map[string]any
			err := a.api.pages(cmd.Context(), "psks?tenant="+q(tenant), "psks", func(item map[string]any) { all = append(all, item) })
			if err != nil {
				return err
			}
			return a.print(all, []string{"KEYID", "TENANT", "ALIAS", "STATUS", "EXPIRES"}, func(row func(...any)) {
				for _, p := range all {
					row(p["keyid"], p["tenant"], p["alias"], p["status"], p["expires_at"])
				}
			})
		},
	}
	list.Flags().StringVar(&tenant, "tenant", "", "only this tenant's")
	issue := &cobra.Command{
		Use: "issue", Short: "Issue a PSK; its password is shown this once", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p map[string]any
			if err := a.api.do(cmd.Context(), "POST", "psks", map[string]any{"tenant": tenant, "alias": alias}, &p); err != nil {
				return err
			}
			return a.print(p, []string{"KEYID", "TENANT", "ALIAS", "PASSWORD"}, func(row func(...any)) {
				row(p["keyid"], p["tenant"], p["alias"], p["password"])
			})
		},
	}
	issue.Flags().StringVar(&tenant, "tenant", "", "the tenant (required)")
	issue.Flags().StringVar(&alias, "alias", "", "a name for the PSK (required)")
	_ = issue.MarkFlagRequired("tenant")
	_ = issue.MarkFlagRequired("alias")
	status := func(verb string) *cobra.Command {
		return &cobra.Command{
			Use: verb + " KEYID", Short: verb + " a PSK", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var p map[string]any
				if err := a.api.do(cmd.Context(), "POST", "psks/"+seg(args[0])+"/"+verb, nil, &p); err != nil {
					return err
				}
				return a.print(p, []string{"KEYID", "STATUS"}, func(row func(...any)) { row(p["keyid"], p["status"]) })
			},
		}
	}
	del := &cobra.Command{
		Use: "delete KEYID", Short: "Delete a PSK (its devices and credentials stay)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.api.do(cmd.Context(), "DELETE", "psks/"+seg(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "deleted PSK %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, issue, status("disable"), status("enable"), del)
	return cmd
}

func (a *app) devicesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "devices", Short: "A tenant's devices"}
	list := &cobra.Command{
		Use: "list TENANT", Short: "List a tenant's devices with their valid credentials", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var all []map[string]any
			if err := a.api.pages(cmd.Context(), "devices/"+seg(args[0])+"?", "devices", func(d map[string]any) { all = append(all, d) }); err != nil {
				return err
			}
			return a.print(all, []string{"ID", "NAME", "STATUS", "VALID CREDENTIALS", "UPDATED"}, func(row func(...any)) {
				for _, d := range all {
					row(d["id"], d["name"], d["status"], d["valid_credentials"], d["updated_at"])
				}
			})
		},
	}
	get := &cobra.Command{
		Use: "get TENANT ID", Short: "Show a device", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var d map[string]any
			if err := a.api.do(cmd.Context(), "GET", "devices/"+seg(args[0])+"/"+seg(args[1]), nil, &d); err != nil {
				return err
			}
			return a.print(d, []string{"ID", "NAME", "STATUS", "IP", "MAC", "UPDATED"}, func(row func(...any)) {
				row(d["id"], d["name"], d["status"], d["ipaddress"], d["macaddress"], d["updated_at"])
			})
		},
	}
	status := func(verb string) *cobra.Command {
		return &cobra.Command{
			Use: verb + " TENANT ID", Short: verb + " a device", Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				var d map[string]any
				if err := a.api.do(cmd.Context(), "POST", "devices/"+seg(args[0])+"/"+seg(args[1])+"/"+verb, nil, &d); err != nil {
					return err
				}
				return a.print(d, []string{"ID", "STATUS"}, func(row func(...any)) { row(d["id"], d["status"]) })
			},
		}
	}
	var reason, fromFile, stateFile string
	decom := &cobra.Command{
		Use:   "decommission TENANT [ID]",
		Short: "Revoke every certificate of a device, delete its keys and disable it",
		Long: "Decommission one device, or with --from-file every device listed there (one id per line),\n" +
			"with a progress bar and a summary; an interrupted run resumes where it stopped (the ids done\n" +
			"are kept in --state-file, FILE.done by default).",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			tenant := args[0]
			one := func(ctx context.Context, id string) (string, error) {
				var r struct {
					Revoked     []int64 `json:"revoked"`
					KeysDeleted []int64 `json:"keys_deleted"`
					Changed     bool    `json:"changed"`
				}
				if err := a.api.do(ctx, "POST", "devices/"+seg(tenant)+"/"+seg(id)+"/decommission", map[string]any{"reason": reasonValue(reason)}, &r); err != nil {
					return "", err
				}
				if !r.Changed {
					return "already decommissioned", nil
				}
				return fmt.Sprintf("%d certificates revoked, %d keys deleted", len(r.Revoked), len(r.KeysDeleted)), nil
			}
			if fromFile != "" {
				if len(args) != 1 {
					return fmt.Errorf("give a device id or --from-file, not both")
				}
				return a.bulk(cmd.Context(), fromFile, stateFile, "decommissioning", one)
			}
			if len(args) != 2 {
				return fmt.Errorf("give the device id, or --from-file")
			}
			what, err := one(cmd.Context(), args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "%s: %s\n", args[1], what)
			return nil
		},
	}
	decom.Flags().StringVar(&reason, "reason", "cessationOfOperation", "the RFC 5280 reason of the revocations (keyCompromise for a stolen device)")
	decom.Flags().StringVar(&fromFile, "from-file", "", "decommission every device id listed in this file")
	decom.Flags().StringVar(&stateFile, "state-file", "", "where a bulk run records what it has done (FILE.done)")
	_ = decom.RegisterFlagCompletionFunc("reason", reasonCompletion)
	cmd.AddCommand(list, get, status("disable"), status("enable"), decom)
	return cmd
}

func (a *app) credentialsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "credentials", Aliases: []string{"creds"}, Short: "The credential inventory: certificates and keys"}
	var tenant, device, kind, state, caName, before string
	var within time.Duration
	list := &cobra.Command{
		Use: "list", Short: "List a tenant's credentials", Args: cobra.NoArgs,
		Example: "  clmctl credentials list --tenant acme --expiring-within 720h --state valid",
		RunE: func(cmd *cobra.Command, _ []string) error {
			query := "credentials?tenant=" + q(tenant) + "&device=" + q(device) + "&kind=" + q(kind) + "&state=" + q(state) + "&ca=" + q(caName)
			if within > 0 {
				before = time.Now().Add(within).UTC().Format(time.RFC3339)
			}
			if before != "" {
				query += "&expiring_before=" + q(before)
			}
			var all []map[string]any
			if err := a.api.pages(cmd.Context(), query, "credentials", func(c map[string]any) { all = append(all, c) }); err != nil {
				return err
			}
			return a.print(all, []string{"KEYNUMBER", "KIND", "STATE", "CA", "SERIAL", "SUBJECT/ALIAS", "NOT AFTER"}, func(row func(...any)) {
				for _, c := range all {
					name := c["subject"]
					if name == nil {
						name = c["alias"]
					}
					row(c["keynumber"], c["kind"], c["state"], c["ca"], c["serial"], name, c["not_after"])
				}
			})
		},
	}
	f := list.Flags()
	f.StringVar(&tenant, "tenant", "", "the tenant (required)")
	f.StringVar(&device, "device", "", "only credentials bound to this device")
	f.StringVar(&kind, "kind", "", "certificate or symmetric-key")
	f.StringVar(&state, "state", "", "valid, revoked, superseded, deleted (comma-separated)")
	f.StringVar(&caName, "ca", "", "only this CA's certificates")
	f.StringVar(&before, "expiring-before", "", "only those whose validity ends before this time (RFC 3339)")
	f.DurationVar(&within, "expiring-within", 0, "only those whose validity ends within this duration from now (720h)")
	_ = list.MarkFlagRequired("tenant")
	_ = list.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions([]string{"certificate", "symmetric-key"}, cobra.ShellCompDirectiveNoFileComp))
	_ = list.RegisterFlagCompletionFunc("state", cobra.FixedCompletions([]string{"valid", "revoked", "superseded", "deleted"}, cobra.ShellCompDirectiveNoFileComp))

	get := &cobra.Command{
		Use: "get TENANT KEYNUMBER", Short: "Show a credential (a certificate in PEM)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c map[string]any
			if err := a.api.do(cmd.Context(), "GET", "credentials/"+seg(args[0])+"/"+seg(args[1]), nil, &c); err != nil {
				return err
			}
			if a.output == "json" {
				return a.print(c, nil, nil)
			}
			for _, k := range []string{"keynumber", "kind", "state", "ca", "serial", "subject", "alias", "keytype", "not_before", "not_after", "state_changed_at", "reason"} {
				if v, ok := c[k]; ok {
					fmt.Fprintf(a.out, "%-17s %v\n", k+":", v)
				}
			}
			if pemText, ok := c["certificate"].(string); ok {
				fmt.Fprint(a.out, pemText)
			}
			return nil
		},
	}
	var reason, serialsFile, stateFile, revokeCA string
	revoke := &cobra.Command{
		Use:   "revoke TENANT [KEYNUMBER]",
		Short: "Revoke a certificate with a reason, or every serial listed in a file",
		Long: "Revoke one certificate by keynumber, or with --serials-file every certificate whose serial\n" +
			"(hex, of --ca) is listed there, one per line, with a progress bar and a summary; an\n" +
			"interrupted run resumes where it stopped (--state-file, FILE.done by default).",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			tenant := args[0]
			body := map[string]any{"reason": reasonValue(reason)}
			if serialsFile != "" {
				if len(args) != 1 {
					return fmt.Errorf("give a keynumber or --serials-file, not both")
				}
				return a.bulk(cmd.Context(), serialsFile, stateFile, "revoking", func(ctx context.Context, serial string) (string, error) {
					var c map[string]any
					if err := a.api.do(ctx, "POST", "credentials/"+seg(tenant)+"/serials/"+seg(revokeCA)+"/"+seg(serial)+"/revoke", body, &c); err != nil {
						return "", err
					}
					return fmt.Sprintf("revoked (keynumber %v)", c["keynumber"]), nil
				})
			}
			if len(args) != 2 {
				return fmt.Errorf("give the keynumber, or --serials-file")
			}
			var c map[string]any
			if err := a.api.do(cmd.Context(), "POST", "credentials/"+seg(tenant)+"/"+seg(args[1])+"/revoke", body, &c); err != nil {
				return err
			}
			return a.print(c, []string{"KEYNUMBER", "SERIAL", "STATE", "REASON"}, func(row func(...any)) {
				row(c["keynumber"], c["serial"], c["state"], c["reason"])
			})
		},
	}
	revoke.Flags().StringVar(&reason, "reason", "unspecified", "the RFC 5280 reason (keyCompromise, superseded, cessationOfOperation, ...)")
	revoke.Flags().StringVar(&serialsFile, "serials-file", "", "revoke every serial listed in this file")
	revoke.Flags().StringVar(&revokeCA, "ca", "ca1", "the CA of the serials")
	revoke.Flags().StringVar(&stateFile, "state-file", "", "where a bulk run records what it has done (FILE.done)")
	_ = revoke.RegisterFlagCompletionFunc("reason", reasonCompletion)
	cmd.AddCommand(list, get, revoke)
	return cmd
}

func (a *app) casCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cas", Short: "The server's CAs"}
	list := &cobra.Command{
		Use: "list", Short: "List the CAs, the default first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct {
				CAs []map[string]any `json:"cas"`
			}
			if err := a.api.do(cmd.Context(), "GET", "cas", nil, &r); err != nil {
				return err
			}
			return a.print(r.CAs, []string{"NAME", "SUBJECT", "ISSUER", "NOT AFTER", "CHAIN"}, func(row func(...any)) {
				for _, c := range r.CAs {
					row(c["name"], c["subject"], c["issuer"], c["not_after"], c["chain_length"])
				}
			})
		},
	}
	raw := func(use, short, path string) *cobra.Command {
		return &cobra.Command{
			Use: use + " NAME", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				b, err := a.api.raw(cmd.Context(), "cas/"+seg(args[0])+path)
				if err != nil {
					return err
				}
				_, err = a.out.Write(b)
				return err
			},
		}
	}
	cmd.AddCommand(list, raw("chain", "Print a CA's chain in PEM", "/chain"), raw("crl", "Print a CA's current CRL in PEM", "/crl?format=pem"))
	return cmd
}

func reasonCompletion(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "privilegeWithdrawn"}, cobra.ShellCompDirectiveNoFileComp
}
