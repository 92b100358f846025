package main

// Following a discovery file by polling: Envoy watches the directory for a rename; polling the
// content also sees a file rewritten in place and needs no inotify instance (the host's
// fs.inotify.max_user_instances is scarce when many kind nodes run). A content is taken only
// once two polls in a row read it the same, so a file caught mid-write is never applied, and a
// file that does not parse leaves the last good configuration in place.

import (
	"bytes"
	"os"
)

type fileWatch struct {
	path     string
	what     string
	seen     []byte // the previous poll's read
	applied  []byte // last content taken into use
	rejected []byte // last content refused or failed, so that it is reported once
	retrying []byte // content whose application failed for a reason that may pass (port in use)
}

// changed returns the file's content when it is stable and differs from what was last applied
// or refused.
func (f *fileWatch) changed() ([]byte, bool) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.seen = nil
		return nil, false // not there yet, or being replaced: look again on the next poll
	}
	stable := f.seen != nil && bytes.Equal(data, f.seen)
	f.seen = data
	if !stable || (f.applied != nil && bytes.Equal(data, f.applied)) ||
		(f.rejected != nil && bytes.Equal(data, f.rejected)) {
		return nil, false
	}
	return data, true
}

func (f *fileWatch) accept(summary string) {
	f.applied, f.rejected, f.retrying = f.seen, nil, nil
	logf("%s %s applied: %s", f.what, f.path, summary)
}

// reject: the content is wrong; wait for a different one.
func (f *fileWatch) reject(err error) {
	f.rejected = f.seen
	logf("%s %s not applied, keeping the last good one: %v", f.what, f.path, err)
}

// retry: the content is right but could not be put in place yet; try again each poll, say so
// once.
func (f *fileWatch) retry(err error) {
	if f.retrying == nil || !bytes.Equal(f.retrying, f.seen) {
		logf("%s %s only partly applied, retrying: %v", f.what, f.path, err)
	}
	f.retrying = f.seen
}
