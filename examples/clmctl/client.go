package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/schollz/progressbar/v3"
)

// client calls the admin API.
type client struct {
	base  string
	token string
	hc    *http.Client
}

func newClient(server, tokenFile, caFile string) (*client, error) {
	token := os.Getenv("CLM_ADMIN_TOKEN")
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, err
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, errors.New("no admin token: give --token-file, CLM_ADMIN_TOKEN_FILE or CLM_ADMIN_TOKEN")
	}
	hc := &http.Client{}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s holds no certificate", caFile)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return &client{base: strings.TrimSuffix(server, "/") + "/admin/v1/", token: token, hc: hc}, nil
}

// apiError is an error the server answered.
type apiError struct {
	Status int
	Code   int    `json:"code"`
	Msg    string `json:"error"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (CLM %d, HTTP %d)", e.Msg, e.Code, e.Status)
}

func (c *client) send(ctx context.Context, method, path string, in any) (*http.Response, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Msg == "" {
			e.Msg = http.StatusText(resp.StatusCode)
		}
		return nil, nil, e
	}
	return resp, data, nil
}

// do sends a JSON request and decodes the JSON answer into out.
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	_, data, err := c.send(ctx, method, path, in)
	if err != nil || out == nil {
		return err
	}
	return json.Unmarshal(data, out)
}

// raw GETs an answer that is not JSON.
func (c *client) raw(ctx context.Context, path string) ([]byte, error) {
	_, data, err := c.send(ctx, "GET", path, nil)
	return data, err
}

// pages GETs every page of a list (query ends with ? or has parameters),
// handing each item of the field to fn.
func (c *client) pages(ctx context.Context, query, field string, fn func(map[string]any)) error {
	after := ""
	for {
		sep := "&"
		if strings.HasSuffix(query, "?") {
			sep = ""
		}
		var page map[string]json.RawMessage
		if err := c.do(ctx, "GET", query+sep+"after="+q(after), nil, &page); err != nil {
			return err
		}
		var items []map[string]any
		if err := json.Unmarshal(page[field], &items); err != nil {
			return err
		}
		for _, it := range items {
			fn(it)
		}
		var next string
		_ = json.Unmarshal(page["next"], &next)
		if next == "" {
			return nil
		}
		after = next
	}
}

func q(s string) string   { return url.QueryEscape(s) }
func seg(s string) string { return url.PathEscape(s) }

// reasonValue sends a reason given as a number as one, and a name as is.
func reasonValue(s string) any {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return s
}

// print writes v as JSON with --output json, or as a table with the
// header and the rows fill gives.
func (a *app) print(v any, header []string, fill func(row func(...any))) error {
	if a.output == "json" || fill == nil {
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	fill(func(cells ...any) {
		s := make([]string, len(cells))
		for i, c := range cells {
			switch c := c.(type) {
			case nil:
				s[i] = "-"
			case float64:
				s[i] = strconv.FormatFloat(c, 'f', -1, 64)
			default:
				s[i] = fmt.Sprint(c)
			}
		}
		fmt.Fprintln(tw, strings.Join(s, "\t"))
	})
	return tw.Flush()
}

// bulk runs op on every item (line) of file, skipping blank lines, '#'
// comments and the items stateFile (file.done when "") records as done,
// and records each success there as it happens, so that a run interrupted
// (Ctrl-C, a crash, a network failure) resumes where it stopped. A failure
// does not stop the run; the summary names each, and the command fails if
// any did.
func (a *app) bulk(ctx context.Context, file, stateFile, verb string, op func(context.Context, string) (string, error)) error {
	if stateFile == "" {
		stateFile = file + ".done"
	}
	items, err := readLines(file)
	if err != nil {
		return err
	}
	done := map[string]bool{}
	if prev, err := readLines(stateFile); err == nil {
		for _, d := range prev {
			done[d] = true
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var todo []string
	for _, it := range items {
		if !done[it] {
			todo = append(todo, it)
		}
	}
	if err := os.MkdirAll(filepath.Dir(stateFile), 0o700); err != nil {
		return err
	}
	state, err := os.OpenFile(stateFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer state.Close()
	bar := progressbar.NewOptions(len(todo), progressbar.OptionSetWriter(a.errOut), progressbar.OptionSetDescription(verb),
		progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
	var ok int
	var failed []string
	for _, it := range todo {
		if ctx.Err() != nil {
			break
		}
		what, err := op(ctx, it)
		if err != nil {
			if ctx.Err() != nil {
				break // interrupted: not a failure of this item
			}
			failed = append(failed, fmt.Sprintf("%s: %v", it, err))
		} else {
			ok++
			if _, err := fmt.Fprintln(state, it); err != nil {
				return err
			}
			if err := state.Sync(); err != nil {
				return err
			}
			if a.output == "table" {
				_ = bar.Clear()
				fmt.Fprintf(a.out, "%s: %s\n", it, what)
			}
		}
		_ = bar.Add(1)
	}
	_ = bar.Finish()
	left := len(todo) - ok - len(failed)
	fmt.Fprintf(a.out, "summary: %d of %d done (%d done before), %d failed, %d left\n", ok, len(items), len(items)-len(todo), len(failed), left)
	for _, f := range failed {
		fmt.Fprintf(a.out, "  failed %s\n", f)
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted: run the same command again to resume (%s records what is done)", stateFile)
	case len(failed) > 0:
		return fmt.Errorf("%d failed", len(failed))
	}
	return nil
}

func readLines(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}
