"""Fault shape: selectors, victim selection, grudges and quorum arithmetic."""

from __future__ import annotations

import random

import pytest

from kubedrill.cluster import COMPONENT_ROLE
from kubedrill.errors import FaultError, UnknownNodeError
from kubedrill.faults.shape import (
    Selector,
    complete_grudge,
    isolate_grudge,
    loses_quorum,
    majority_side,
    members_left,
    quorum,
    select_victims,
)

THREE = ["n1", "n2", "n3"]
FIVE = ["n1", "n2", "n3", "n4", "n5"]


# --- Selector ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["leader", "follower", "one", "minority", "majority"])
def test_selector_parse_kinds(kind: str) -> None:
    sel = Selector.parse(kind)
    assert sel == Selector(kind)
    assert sel.names == ()
    assert str(sel) == kind


def test_selector_parse_node_list() -> None:
    sel = Selector.parse("n1,,n3,")
    assert sel == Selector("named", ("n1", "n3"))
    assert str(sel) == "n1,n3"


def test_selector_parse_literal_named_is_a_node_name() -> None:
    assert Selector.parse("named") == Selector("named", ("named",))


def test_selector_constructors() -> None:
    assert Selector.leader() == Selector("leader")
    assert Selector.follower() == Selector("follower")
    assert Selector.named("n2", "n1") == Selector("named", ("n2", "n1"))


def test_selector_rejects_unknown_kind() -> None:
    with pytest.raises(UnknownNodeError, match="unknown victim selector 'boss'") as info:
        Selector("boss")
    assert "leader" in info.value.hint
    assert "majority" in info.value.hint


@pytest.mark.parametrize("text", ["", ",", ",,"])
def test_selector_named_needs_a_name(text: str) -> None:
    with pytest.raises(UnknownNodeError, match="needs at least one node name"):
        Selector.parse(text)


def test_component_roles() -> None:
    assert COMPONENT_ROLE["etcd"] == "etcd"
    assert COMPONENT_ROLE["kube-apiserver"] == "control-plane"
    assert COMPONENT_ROLE["haproxy"] == "lb"


# --- quorum arithmetic ------------------------------------------------------------------------


@pytest.mark.parametrize(("members", "q"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)])
def test_quorum(members: int, q: int) -> None:
    assert quorum(members) == q


def test_members_left_and_loses_quorum() -> None:
    assert members_left(THREE, ["n1"]) == 2
    assert members_left(THREE, ["n1", "x9"]) == 2  # non-members do not count
    assert not loses_quorum(THREE, ["n1"])
    assert loses_quorum(THREE, ["n1", "n2"])
    assert not loses_quorum(FIVE, ["n1", "n2"])
    assert loses_quorum(FIVE, ["n1", "n2", "n5"])
    assert loses_quorum(["n1"], ["n1"])
    assert not loses_quorum(THREE, [])


# --- select_victims ---------------------------------------------------------------------------


def test_no_candidates() -> None:
    with pytest.raises(FaultError, match="no candidate nodes"):
        select_victims(Selector.leader(), [], leader="n1")


def test_named_returns_names_in_given_order() -> None:
    assert select_victims(Selector.named("n3", "n1"), THREE, leader=None) == ("n3", "n1")


def test_named_unknown_lists_candidates() -> None:
    with pytest.raises(UnknownNodeError, match="unknown node\\(s\\) n9, n7") as info:
        select_victims(Selector.named("n9", "n1", "n7"), ["n3", "n1", "n2"], leader=None)
    assert info.value.hint == "candidates: n1, n2, n3"


def test_leader() -> None:
    assert select_victims(Selector.leader(), THREE, leader="n2") == ("n2",)


def test_leader_missing() -> None:
    with pytest.raises(FaultError, match="there is no leader"):
        select_victims(Selector.leader(), THREE, leader=None)
    with pytest.raises(FaultError, match="there is no leader"):
        select_victims(Selector.follower(), THREE, leader=None)


def test_leader_not_a_candidate() -> None:
    with pytest.raises(FaultError, match="leader 'n9' is not one of n1, n2, n3"):
        select_victims(Selector.leader(), ["n3", "n2", "n1"], leader="n9")


def test_follower_is_never_the_leader() -> None:
    for seed in range(50):
        (victim,) = select_victims(Selector.follower(), FIVE, leader="n3", rng=random.Random(seed))
        assert victim in FIVE
        assert victim != "n3"


def test_follower_is_deterministic_without_rng() -> None:
    picks = {select_victims(Selector.follower(), FIVE, leader="n1") for _ in range(10)}
    assert len(picks) == 1


def test_follower_alone() -> None:
    with pytest.raises(FaultError, match="no follower"):
        select_victims(Selector.follower(), ["n1"], leader="n1")


def test_one_is_a_candidate_and_deterministic_for_a_seed() -> None:
    a = select_victims(Selector("one"), FIVE, leader=None, rng=random.Random(7))
    b = select_victims(Selector("one"), list(reversed(FIVE)), leader=None, rng=random.Random(7))
    assert a == b  # candidates are sorted first: input order does not matter
    assert len(a) == 1
    assert a[0] in FIVE


@pytest.mark.parametrize(("candidates", "size"), [(THREE, 1), (FIVE, 2), (["n1"], 1)])
def test_minority_size(candidates: list[str], size: int) -> None:
    for seed in range(20):
        victims = select_victims(
            Selector("minority"), candidates, leader=None, rng=random.Random(seed)
        )
        assert len(victims) == size
        assert len(set(victims)) == size
        assert list(victims) == sorted(victims)
        assert set(victims) <= set(candidates)


def test_minority_includes_the_leader() -> None:
    for seed in range(20):
        victims = select_victims(Selector("minority"), FIVE, leader="n4", rng=random.Random(seed))
        assert "n4" in victims
        assert len(victims) == 2


@pytest.mark.parametrize(("candidates", "size"), [(THREE, 2), (FIVE, 3), (["n1"], 1)])
def test_majority_size(candidates: list[str], size: int) -> None:
    victims = select_victims(Selector("majority"), candidates, leader="n1", rng=random.Random(3))
    assert len(victims) == size
    assert len(set(victims)) == size
    assert list(victims) == sorted(victims)


def test_minority_varies_with_seed() -> None:
    seen = {
        select_victims(Selector("minority"), FIVE, leader=None, rng=random.Random(s))
        for s in range(30)
    }
    assert len(seen) > 1


# --- grudges ----------------------------------------------------------------------------------


def test_complete_grudge() -> None:
    grudge = complete_grudge([["n1", "n2"], ["n3"], ["n4", "n5"]])
    assert grudge == {
        "n1": frozenset({"n3", "n4", "n5"}),
        "n2": frozenset({"n3", "n4", "n5"}),
        "n3": frozenset({"n1", "n2", "n4", "n5"}),
        "n4": frozenset({"n1", "n2", "n3"}),
        "n5": frozenset({"n1", "n2", "n3"}),
    }


def test_complete_grudge_single_component_is_no_grudge() -> None:
    assert complete_grudge([THREE]) == {n: frozenset() for n in THREE}


def test_complete_grudge_rejects_overlap() -> None:
    with pytest.raises(FaultError, match="appears in two sides"):
        complete_grudge([["n1", "n2"], ["n2", "n3"]])


def test_isolate_grudge_one_victim() -> None:
    assert isolate_grudge(["n2"], THREE) == {
        "n2": frozenset({"n1", "n3"}),
        "n1": frozenset({"n2"}),
        "n3": frozenset({"n2"}),
    }


def test_isolate_grudge_victims_are_alone() -> None:
    grudge = isolate_grudge(["n1", "n2"], FIVE)
    assert grudge["n1"] == frozenset({"n2", "n3", "n4", "n5"})
    assert grudge["n2"] == frozenset({"n1", "n3", "n4", "n5"})
    assert grudge["n3"] == frozenset({"n1", "n2"})


def test_isolate_everyone() -> None:
    grudge = isolate_grudge(THREE, THREE)
    assert grudge == {n: frozenset(set(THREE) - {n}) for n in THREE}


def test_majority_side_of_isolation_and_partition() -> None:
    assert majority_side(isolate_grudge(["n2"], THREE), THREE) == frozenset({"n1", "n3"})
    grudge = complete_grudge([["n1", "n4"], ["n2", "n3", "n5", "cp1"]])
    assert majority_side(grudge, FIVE) == frozenset({"n2", "n3", "n5"})


def test_majority_side_without_grudge_is_everyone() -> None:
    assert majority_side({}, THREE) == frozenset(THREE)


def test_majority_side_ignores_non_members() -> None:
    grudge = isolate_grudge(["lb1"], ["lb1", *THREE])
    assert majority_side(grudge, THREE) == frozenset(THREE)
