package main

import "testing"

func TestNewHostIsPendingUntilItsFirstCheck(t *testing.T) {
	s := newHealthState(true)
	if s.Healthy() || s.Flags() != "/failed_active_hc/pending_active_hc" {
		t.Fatalf("new host: %q", s.Flags())
	}
	if !s.Success(1) || !s.Healthy() || s.Flags() != "healthy" {
		t.Fatalf("after one success: %q", s.Flags())
	}
}

func TestFirstCheckSuccessIsEnoughWhateverTheThreshold(t *testing.T) {
	s := newHealthState(true)
	if !s.Success(3) || s.Flags() != "healthy" {
		t.Fatalf("got %q", s.Flags())
	}
}

func TestUncheckedHostIsHealthy(t *testing.T) {
	if s := newHealthState(false); !s.Healthy() || s.Flags() != "healthy" {
		t.Fatalf("got %q", s.Flags())
	}
}

func TestNetworkFailuresNeedTheThreshold(t *testing.T) {
	s := newHealthState(true)
	s.Success(1)
	if s.Failure(FailNetwork, 2) || !s.Healthy() {
		t.Fatal("one failure of two marked the host failed")
	}
	s.Success(1) // a success in between resets the count
	if s.Failure(FailNetwork, 2) || !s.Healthy() {
		t.Fatal("count not reset by a success")
	}
	if !s.Failure(FailNetwork, 2) || s.Healthy() || s.Flags() != "/failed_active_hc" {
		t.Fatalf("two failures in a row: %q", s.Flags())
	}
	if s.Failure(FailNetwork, 2) {
		t.Fatal("an already failed host changed again")
	}
}

func TestTimeoutsSetActiveHCTimeoutUntilASuccess(t *testing.T) {
	s := newHealthState(true)
	s.Success(1)
	s.Failure(FailTimeout, 2)
	if !s.Healthy() || !s.ActiveHCTimeout || s.Flags() != "healthy" {
		t.Fatalf("after one timeout: %q", s.Flags())
	}
	s.Failure(FailTimeout, 2)
	if s.Flags() != "/failed_active_hc/active_hc_timeout" {
		t.Fatalf("after two timeouts: %q", s.Flags())
	}
	if !s.Success(1) || s.Flags() != "healthy" {
		t.Fatalf("after recovery: %q", s.Flags())
	}
}

func TestBadStatusFailsAtOnce(t *testing.T) {
	s := newHealthState(true)
	s.Success(1)
	if !s.Failure(FailActive, 2) || s.Healthy() {
		t.Fatal("a 500 did not mark the host failed at once")
	}
}

func TestHealthyThresholdCountsSuccessesInARow(t *testing.T) {
	s := newHealthState(true)
	s.Failure(FailNetwork, 2) // first check fails: stays failed, no longer pending
	if s.Flags() != "/failed_active_hc" {
		t.Fatalf("got %q", s.Flags())
	}
	if s.Success(3) || s.Success(3) {
		t.Fatal("healthy before 3 successes")
	}
	s.Failure(FailNetwork, 2)
	if s.Success(3) || s.Success(3) || !s.Success(3) {
		t.Fatal("a failure did not restart the count, or 3 successes did not suffice")
	}
}
