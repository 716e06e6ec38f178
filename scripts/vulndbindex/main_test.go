package main

import (
	"os"
	"path/filepath"
	"testing"
)

// Two reports: one about a module and Go itself, listing the module twice (two packages); one
// about the module alone. The index names each module once per report, in order.
func TestIndexWritesTheV1Layout(t *testing.T) {
	t.Parallel()
	osv := t.TempDir()
	reports := map[string]string{
		"GO-2021-0113.json": `{"id":"GO-2021-0113","modified":"2024-05-20T16:03:47Z","affected":[
			{"package":{"name":"golang.org/x/text","ecosystem":"Go"}},
			{"package":{"name":"golang.org/x/text","ecosystem":"Go"}},
			{"package":{"name":"stdlib","ecosystem":"Go"}}]}`,
		"GO-2020-0015.json": `{"id":"GO-2020-0015","modified":"2023-01-01T00:00:00Z","affected":[
			{"package":{"name":"golang.org/x/text","ecosystem":"Go"}}]}`,
	}
	for name, body := range reports {
		if err := os.WriteFile(filepath.Join(osv, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "db")
	if err := index(osv, out); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"index/db.json": `{"modified":"2024-05-20T16:03:47Z"}`,
		"index/modules.json": `[{"path":"golang.org/x/text","vulns":[{"id":"GO-2020-0015","modified":"2023-01-01T00:00:00Z"},` +
			`{"id":"GO-2021-0113","modified":"2024-05-20T16:03:47Z"}]},` +
			`{"path":"stdlib","vulns":[{"id":"GO-2021-0113","modified":"2024-05-20T16:03:47Z"}]}]`,
		"ID/GO-2020-0015.json": reports["GO-2020-0015.json"],
	}
	for file, body := range want {
		got, err := os.ReadFile(filepath.Join(out, file))
		if err != nil || string(got) != body {
			t.Errorf("%s = %s (%v), want %s", file, got, err, body)
		}
	}
}

func TestIndexRefusesWhatItCannotIndex(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	if err := index(empty, filepath.Join(t.TempDir(), "db")); err == nil {
		t.Error("an empty report directory was indexed")
	}
	misnamed := t.TempDir()
	if err := os.WriteFile(filepath.Join(misnamed, "GO-1.json"), []byte(`{"id":"GO-2"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := index(misnamed, filepath.Join(t.TempDir(), "db")); err == nil {
		t.Error("a report whose file is not named after its id was indexed")
	}
	if err := index(misnamed, t.TempDir()); err == nil {
		t.Error("an existing output directory was written into")
	}
}
