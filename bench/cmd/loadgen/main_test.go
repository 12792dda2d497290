package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRunJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"allowed":true,"remaining":1,"reset_ms":1}`)
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"--url", srv.URL, "--ops", "50", "--duration", "0", "--warmup", "0", "--conns", "2", "--json"}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v (stderr %s)", err, errOut.String())
	}
	var res struct {
		Ops      int64            `json:"ops"`
		Statuses map[string]int64 `json:"statuses"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if res.Ops != 50 || res.Statuses["200"] != 50 {
		t.Errorf("result %+v, want 50 ops all 200", res)
	}
}

func TestRunRefusesRemote(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"--url", "http://192.168.0.1:8080", "--ops", "1"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("err = %v, want a loopback refusal", err)
	}
}
