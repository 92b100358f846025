package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWatchTakesOnlyStableContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cds.yaml")
	f := &fileWatch{path: path, what: "CDS"}
	if _, ok := f.changed(); ok {
		t.Fatal("a missing file changed")
	}
	os.WriteFile(path, []byte("resources: [] # half"), 0o644)
	if _, ok := f.changed(); ok {
		t.Fatal("content taken on its first read")
	}
	os.WriteFile(path, []byte("resources: []"), 0o644) // still being written
	if _, ok := f.changed(); ok {
		t.Fatal("content that changed between polls taken")
	}
	data, ok := f.changed()
	if !ok || string(data) != "resources: []" {
		t.Fatalf("stable content not taken: %q %v", data, ok)
	}
	f.accept("0 clusters")
	if _, ok := f.changed(); ok {
		t.Fatal("applied content offered again")
	}
}

func TestWatchReportsABadFileOnceAndTakesTheNextGoodOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lds.yaml")
	f := &fileWatch{path: path, what: "LDS"}
	os.WriteFile(path, []byte("resources: [{"), 0o644)
	f.changed()
	if _, ok := f.changed(); !ok {
		t.Fatal("bad content not offered")
	}
	f.reject(nil)
	if _, ok := f.changed(); ok {
		t.Fatal("rejected content offered again")
	}
	tmp := path + ".tmp"
	os.WriteFile(tmp, []byte("resources: []"), 0o644)
	os.Rename(tmp, path) // as kind replaces it
	f.changed()
	if _, ok := f.changed(); !ok {
		t.Fatal("good content after a bad one not offered")
	}
}

func TestWatchRetriesContentThatCouldNotBeApplied(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lds.yaml")
	os.WriteFile(path, []byte("resources: []"), 0o644)
	f := &fileWatch{path: path, what: "LDS"}
	f.changed()
	f.changed()
	f.retry(nil)
	if _, ok := f.changed(); !ok {
		t.Fatal("content to retry not offered again")
	}
}
