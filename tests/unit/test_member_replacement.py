"""The member replacement's logic without a cluster: flag overrides, the membership answers,
when a member counts as caught up, etcd's refusals read from its log, which way the repair
goes from each state a crash may leave, and the lost disk's paths."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from kubedrill import cli
from kubedrill.cluster import Cluster, EtcdAccess, Node
from kubedrill.disaster.membership import (
    Member,
    MembershipError,
    add_member,
    by_peer_url,
    catch_up_gap,
    initial_cluster,
    parse_members,
)
from kubedrill.disaster.replacement import Replacement, repair_route, unavailable
from kubedrill.disaster.wrong_way import Refusal, refusal_in_log
from kubedrill.errors import ConfigError
from kubedrill.probes.etcd import EtcdClient, EtcdError
from kubedrill.targets.lab import overrides
from kubedrill.targets.lab.control import LabControl
from kubedrill.targets.lab.member_disk import MemberDisk
from kubedrill.transport.base import TransportSpec
from tests.unit import lab_states

URL1, URL2, URL3 = (f"https://10.0.0.1{i}:2380" for i in (1, 2, 3))
# A member/list answer as etcd's gateway gives it: uint64 IDs as decimal strings; an added,
# unstarted member has neither name nor client URLs.
LIST: dict[str, Any] = {
    "header": {"cluster_id": "10649250030445571369", "member_id": "4668173731479333275"},
    "members": [
        {"ID": "4668173731479333275", "name": "etcd-1", "peerURLs": [URL1],
         "clientURLs": ["https://10.0.0.11:2379"]},
        {"ID": "16056352517242641957", "name": "etcd-3", "peerURLs": [URL3],
         "clientURLs": ["https://10.0.0.13:2379"]},
        {"ID": "8924347281958453344", "peerURLs": [URL2]},
    ],
}  # fmt: skip


# -- flag overrides ------------------------------------------------------------------------------


def test_override_replaces_flags_in_place_and_appends_the_rest() -> None:
    argv = ("etcd", "--name=etcd-2", "--initial-cluster-state=new", "--initial-cluster=a=x")
    got = overrides.with_flags(
        argv,
        {
            "--initial-cluster-state": "existing",
            "--initial-cluster": "a=x,b=y",
            "--log-level": "debug",
        },
    )
    assert got == (
        "etcd",
        "--name=etcd-2",
        "--initial-cluster-state=existing",
        "--initial-cluster=a=x,b=y",
        "--log-level=debug",
    )
    assert overrides.with_flags(argv, {}) == argv


def test_override_of_a_repeated_flag_keeps_one() -> None:
    got = overrides.with_flags(("etcd", "--x=1", "--y=2", "--x=3"), {"--x": "9"})
    assert got == ("etcd", "--x=9", "--y=2")


def test_override_file_round_trip_and_bad_ones(tmp_path: Path) -> None:
    assert overrides.read_flags(tmp_path, "etcd-2__etcd") == {}
    overrides.write_flags(tmp_path, "etcd-2__etcd", {"--initial-cluster-state": "existing"})
    assert overrides.read_flags(tmp_path, "etcd-2__etcd") == {"--initial-cluster-state": "existing"}
    assert overrides.clear_flags(tmp_path, "etcd-2__etcd")
    assert not (tmp_path / "overrides").exists()  # the lab's state looks as before
    assert not overrides.clear_flags(tmp_path, "etcd-2__etcd")
    with pytest.raises(ConfigError, match="not a --flag"):
        overrides.write_flags(tmp_path, "k", {"initial-cluster-state": "existing"})
    path = overrides.override_path(tmp_path, "k")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable"):
        overrides.read_flags(tmp_path, "k")
    path.write_text(json.dumps({"flags": {"--x": 1}}))
    with pytest.raises(ConfigError, match="non-string"):
        overrides.read_flags(tmp_path, "k")


# -- membership ----------------------------------------------------------------------------------


def test_members_parsed_from_the_gateway() -> None:
    members = parse_members(LIST)
    assert [m.name for m in members] == ["etcd-1", "etcd-3", ""]
    added = by_peer_url(members, URL2)
    assert added is not None and not added.started and added.hex_id == "7bd9a691d95b4060"
    assert by_peer_url(members, "https://10.0.0.99:2380") is None


def test_initial_cluster_names_the_new_member_as_member_add_prints_it() -> None:
    members = parse_members(LIST)
    new = members[2]
    assert initial_cluster(members, new, "etcd-2") == f"etcd-1={URL1},etcd-3={URL3},etcd-2={URL2}"
    with pytest.raises(MembershipError, match="never started"):
        initial_cluster(members, members[0], "etcd-1")  # etcd-2 has no name to give


def status(member_id: str, *, leader: str, applied: int = 0, index: int = 0) -> dict[str, Any]:
    return {
        "header": {"member_id": member_id},
        "leader": leader,
        "raftIndex": str(index),
        "raftAppliedIndex": str(applied),
    }


def started(members: list[Member], *, learner: bool = False) -> list[Member]:
    return [
        Member(m.id, m.name or "etcd-2", m.peer_urls, is_learner=learner and not m.name)
        for m in members
    ]


def test_caught_up_only_when_voting_started_following_and_applied() -> None:
    members = parse_members(LIST)
    new_id, leader_id = members[2].id, members[0].id
    leader = status(leader_id, leader=leader_id, index=500, applied=500)
    ok = status(new_id, leader=leader_id, applied=500)

    def gap(ms: list[Member], st: Mapping[str, Any], expected: int = 3) -> str | None:
        return catch_up_gap(ms, "etcd-2", URL2, expected, leader, st)

    assert gap(started(members), ok) is None
    assert "has not started" in str(gap(members, ok))
    assert "learner" in str(gap(started(members, learner=True), ok))
    assert "no member has peer URL" in str(gap(started(members)[:2], ok))
    assert "2 members, 3 expected" in str(gap(started(members)[1:], ok, expected=3))
    assert "answers as member" in str(gap(started(members), status("1", leader=leader_id)))
    assert "does not follow" in str(gap(started(members), status(new_id, leader="7", applied=500)))
    behind = status(new_id, leader=leader_id, applied=499)
    assert "applied index 499 < the leader's commit index 500" in str(gap(started(members), behind))


class FakeEtcd:
    """Answers member/add from a script of answers (an exception text, or a member)."""

    def __init__(self, answers: list[str | dict[str, Any]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def call(
        self, node: str, path: str, body: Mapping[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        self.calls.append(path)
        if path == "/v3/cluster/member/list":
            return LIST
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, str):
            raise EtcdError(f"{node}: {answer}")
        return answer


ADDED = {"member": LIST["members"][2], "members": LIST["members"]}


def test_member_add_asks_again_while_etcd_says_unhealthy() -> None:
    fake = FakeEtcd(["etcdserver: unhealthy cluster", "etcdserver: unhealthy cluster", ADDED])
    new, members = add_member(cast(EtcdClient, fake), ["etcd-1"], URL2, retry_s=5)
    assert new.peer_urls == (URL2,) and len(members) == 3
    assert fake.calls.count("/v3/cluster/member/add") == 3


def test_member_add_gives_up_and_says_how_long_it_asked() -> None:
    fake = FakeEtcd(["etcdserver: unhealthy cluster"])
    with pytest.raises(MembershipError, match=r"unhealthy cluster.*asked for 0.5 s"):
        add_member(cast(EtcdClient, fake), ["etcd-1"], URL2, retry_s=0.5)


def test_member_add_whose_answer_was_lost_finds_its_member() -> None:
    fake = FakeEtcd(["etcdserver: Peer URLs already exists"])
    new, _ = add_member(cast(EtcdClient, fake), ["etcd-1"], URL2, retry_s=1)
    assert new.id == "8924347281958453344"
    with pytest.raises(MembershipError, match="other error"):
        add_member(cast(EtcdClient, FakeEtcd(["some other error"])), ["etcd-1"], URL2)


# -- the wrong way round -------------------------------------------------------------------------


def zap(level: str, msg: str, error: str = "") -> str:
    entry = {"level": level, "ts": "2026-12-01T23:08:31.75Z", "msg": msg}
    return json.dumps(entry | ({"error": error} if error else {}))


def test_already_bootstrapped_is_read_from_etcds_log() -> None:
    # etcd 3.6 started with its old flags (--initial-cluster-state=new) on an empty data dir.
    lines = [
        "--- kubedrill supervisor: start #2 at 1796166507.995",
        zap("warn", "Running http and grpc server on single port."),
        zap("error", "bootstrap failed", "member ded39f8b52b25e25 has already been bootstrapped"),
        zap("fatal", "discovery failed", "member ded39f8b52b25e25 has already been bootstrapped"),
        "--- kubedrill supervisor: exited 1 after 0.1s; restart in 0.5s unless held",
    ]
    found = refusal_in_log(lines)
    assert found is not None and found.refused
    assert found.reason == "bootstrap failed: member ded39f8b52b25e25 has already been bootstrapped"
    assert "still a bootstrapped member" in found.meaning
    assert "it exited: fatal: discovery failed" in str(found)


def test_a_removed_identity_is_the_reason_not_the_exit_line() -> None:
    lines = [
        zap("warn", "server error", "the member has been permanently removed from the cluster"),
        zap("warn", "data-dir used by this member must be removed"),
        zap("fatal", "listener failed", "server is stopping"),
    ]
    found = refusal_in_log(lines)
    assert found is not None
    assert found.reason == "server error: the member has been permanently removed from the cluster"
    assert found.exit == "fatal: listener failed: server is stopping"


def test_a_lost_raft_log_panics() -> None:
    msg = "tocommit(1415) is out of range [lastIndex(0)]. Was the raft log corrupted?"
    found = refusal_in_log(["panic: ...", zap("panic", msg), "goroutine 1 [running]:"])
    assert found is not None and "raft log is lost" in found.meaning
    assert found.reason == msg and found.exit == f"panic: {msg}"


def test_a_cluster_of_its_own_is_refused_by_its_peers_without_an_exit() -> None:
    # Old flags after a restore under a new token: it bootstraps a cluster of its own and keeps
    # running, every peer turning it away.
    lines = [
        zap("warn", "Running http and grpc server on single port."),
        zap(
            "warn",
            "request sent was ignored by remote peer due to cluster ID mismatch",
            "",
        ),
    ]
    found = refusal_in_log(lines)
    assert found is not None and found.refused and found.exit == ""
    assert "a cluster of its own" in found.meaning


def test_nothing_known_and_no_exit_is_no_refusal_yet() -> None:
    errors = [zap("error", "setting up serving from embedded etcd failed.", "http: closed")]
    assert refusal_in_log(errors) is None
    assert refusal_in_log(["not json", "{also not json", zap("info", "ready")]) is None
    # A known reason at info level is not etcd refusing anything.
    assert refusal_in_log([zap("info", "member 1 has already been bootstrapped")]) is None
    unknown = refusal_in_log([zap("fatal", "something new")])
    assert unknown == Refusal(True, "fatal: something new")


# -- the repair's route --------------------------------------------------------------------------

OLD = "16174187810413262306"


@pytest.mark.parametrize(
    ("entry", "aside", "wal", "raft", "route"),
    [
        (None, True, False, False, "add"),  # removed, not added again
        (None, False, True, True, "add"),
        (Member(OLD, "etcd-2", (URL2,)), True, False, False, "put back"),  # wiped (or refused)
        (Member(OLD, "etcd-2", (URL2,)), True, True, True, "replace"),  # ran raft the wrong way
        (Member(OLD, "etcd-2", (URL2,)), True, False, True, "replace"),  # ... its WAL moved aside
        (Member(OLD, "etcd-2", (URL2,)), False, True, True, "restart"),  # never wiped
        (Member(OLD, "etcd-2", (URL2,)), False, False, False, "replace"),  # data gone
        (Member("42", "", (URL2,)), False, False, False, "start"),  # added, not started
        (Member("42", "etcd-2", (URL2,)), False, True, True, "wait"),  # replaced
    ],
)
def test_repair_route(entry: Member | None, aside: bool, wal: bool, raft: bool, route: str) -> None:
    assert repair_route(entry, OLD, aside, wal, raft) == route


# -- the lost disk ---------------------------------------------------------------------------


def lab_state(tmp_path: Path) -> Path:
    state = tmp_path / "labs" / "kdunit"
    (state / "data" / "etcd-2" / "etcd" / "member" / "wal").mkdir(parents=True)
    (state / "data" / "etcd-2" / "etcd" / "member" / "wal" / "0-0.wal").write_text("wal")
    hosts = [
        {"name": f"etcd-{i}", "roles": ["etcd"], "address": f"10.0.0.1{i}", "netns": f"n{i}"}
        for i in (1, 2, 3)
    ]
    hosts.append({"name": "lb", "roles": ["lb"], "address": "10.0.0.2", "netns": "lb"})
    (state / "lab.json").write_text(json.dumps(lab_states.state(name="kdunit", hosts=hosts)))
    return state


def test_member_disk_moves_only_its_own_dirs(tmp_path: Path) -> None:
    state = lab_state(tmp_path)
    disk = MemberDisk.of(state, "etcd-2")
    assert disk.peer_url == URL2
    assert disk.has_wal()
    lost = disk.aside("abc123")
    disk.move_aside(lost)
    assert disk.is_empty() and disk.has_wal(lost)
    (disk.data_dir / "member" / "snap").mkdir(parents=True)  # a failed start's leftovers
    assert not disk.raft_since_wipe()
    junk = disk.set_junk_aside()
    assert junk is not None and junk.name.startswith("etcd.junk-") and disk.is_empty()
    (junk / "member" / "wal").mkdir()
    (junk / "member" / "wal" / "0-0.wal").write_text("a wrong-way start's raft log")
    assert disk.raft_since_wipe()
    disk.put_back(lost)
    assert disk.has_wal() and not lost.exists()
    assert [p.name for p in disk.discard_asides()] == [junk.name]
    assert disk.asides() == []
    for bad in (
        state / "data" / "etcd-2" / "etcd",  # the data dir itself
        state / "data" / "etcd-1" / "etcd.lost-abc",  # another member's
        state / "data" / "etcd-2" / ".." / "etcd-1" / "etcd.lost-abc",
        tmp_path / "etcd.lost-abc",  # outside the lab
        state / "data" / "etcd-2" / "etcd.lost-a/b",
    ):
        with pytest.raises(ConfigError, match="not an aside dir"):
            disk.checked_aside(bad)
    with pytest.raises(ConfigError, match="not an etcd member"):
        MemberDisk.of(state, "lb")
    with pytest.raises(ConfigError, match="no lab state"):
        MemberDisk.of(tmp_path, "etcd-2")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--host=etcd-2", "--old-id=xyz", "--aside=A"], "not a decimal member ID"),
        (["--host=lb", "--old-id=1", "--aside=A"], "not an etcd member"),
        (["--host=etcd-2", "--old-id=1", "--aside=/tmp/etcd.lost-x"], "not an aside dir"),
        (["--host=etcd-2", "--old-id=1", "--aside=S/data/etcd-2/etcd"], "not an aside dir"),
    ],
)
def test_replace_member_refuses_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    state = lab_state(tmp_path)
    aside = str(state / "data" / "etcd-2" / "etcd.lost-x")
    argv = [a.replace("=A", f"={aside}").replace("=S/", f"={state}/") for a in args]
    before = sorted(p.name for p in (state / "data" / "etcd-2").iterdir())
    assert cli.main(["etcd", "replace-member", f"--state-dir={state}", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1, err
    assert err.startswith("kubedrill: error: ") and err.endswith("(nothing changed)")
    assert sorted(p.name for p in (state / "data" / "etcd-2").iterdir()) == before


# -- the runbook -------------------------------------------------------------------------------


class RunbookEtcd:
    """member/list, remove and add as the other members answer them."""

    def __init__(self) -> None:
        self.nodes = ["etcd-1", "etcd-2", "etcd-3"]
        self.members = [dict(m) for m in LIST["members"][:2]] + [
            {"ID": OLD, "name": "etcd-2", "peerURLs": [URL2]}
        ]
        self.calls: list[tuple[str, str]] = []

    def call(
        self, node: str, path: str, body: Mapping[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        self.calls.append((node, path))
        if path.endswith("/remove"):
            self.members = [m for m in self.members if m["ID"] != body["ID"]]
        if path.endswith("/add"):
            new = {"ID": "42", "peerURLs": list(body["peerURLs"])}
            self.members.append(new)
            return {"member": new, "members": self.members}
        return {"members": self.members}


def test_runbook_removes_adds_and_starts_with_existing(tmp_path: Path) -> None:
    state = lab_state(tmp_path)
    disk = MemberDisk.of(state, "etcd-2")
    disk.hold()
    fake = RunbookEtcd()
    runbook = Replacement(cast(EtcdClient, fake), disk)
    with pytest.raises(MembershipError, match="start before add"):
        runbook.start()
    names = [name for name, _what, _do in runbook.plan()]
    assert names == ["remove", "add", "start"]
    for _name, _what, do in runbook.plan():
        do()
    assert "removed member" in runbook.steps[0].detail
    assert all(node != "etcd-2" for node, _ in fake.calls)  # the victim is never asked
    assert disk.override() == {
        "--initial-cluster-state": "existing",
        "--initial-cluster": "etcd-1=https://10.0.0.11:2380,etcd-3=https://10.0.0.13:2380,"
        "etcd-2=https://10.0.0.12:2380",
    }
    assert not disk.held()  # released: the supervisor starts it
    assert "moved etcd.junk-" in runbook.steps[2].detail  # its old data dir was not empty
    assert runbook.finish().startswith("override cleared; discarded etcd.junk-")
    assert disk.override() == {} and disk.asides() == []


# -- where the drills run ----------------------------------------------------------------------


class NoDisks:
    """A target's control without member disks (kind, SSH)."""

    def where(self, node: Any) -> Any:
        return None


def cluster_with(control: object, members: int = 3) -> Cluster:
    endpoints = {f"etcd-{i}": f"https://10.0.0.1{i}:2379" for i in range(1, members + 1)}
    return Cluster(
        name="kind/kind",
        target="kind",
        nodes=(),
        etcd=EtcdAccess(endpoints, None),
        control=cast(Any, control),
        observer=TransportSpec("local", "kubedrill"),
    )


def test_the_drills_run_where_member_disks_are(tmp_path: Path) -> None:
    reason = unavailable(cluster_with(NoDisks()))
    assert reason is not None and "run on the lab" in reason
    assert unavailable(cluster_with(LabControl(tmp_path))) is None
    one = unavailable(cluster_with(LabControl(tmp_path), members=1))
    assert one is not None and "3 or more" in one


def test_a_held_members_command_line_is_the_one_it_will_start_with(tmp_path: Path) -> None:
    """What `kubedrill audit` reads of a member that does not run: components.json with the
    flag override the supervisor will apply."""
    state = tmp_path / "state"
    state.mkdir()
    argv = ["etcd", "--initial-cluster-state=new", "--name=h1"]
    spec = {"host": "h1", "component": "etcd", "netns": "x", "argv": argv}
    (state / "components.json").write_text(json.dumps([spec]))
    node = Node("h1", frozenset({"etcd"}), "10.0.0.1", TransportSpec("local", "h1"))
    control = LabControl(state)
    found = control.command_line(node, "etcd")
    assert found is not None and found.argv == tuple(argv)
    overrides.write_flags(state, "h1__etcd", {"--initial-cluster-state": "existing"})
    found = control.command_line(node, "etcd")
    joining = ("etcd", "--initial-cluster-state=existing", "--name=h1")
    assert found is not None and found.argv == joining
    assert found.source.endswith("h1__etcd.json")
    overrides.override_path(state, "h1__etcd").write_text("{broken")
    assert control.command_line(node, "etcd") is None  # not what it will start with: unknown
