"""gofail failpoints as faults: arm one on an etcd member, undo by disarming it.

A member built with failpoints (lab.etcd.failpoints) serves them over HTTP on its own address
(`EtcdAccess.failpoint_urls`): `PUT /<name>` with a term arms one, `DELETE /<name>` disarms it,
`GET /<name>` answers the term or "failpoint is disabled". Terms are gofail's: `sleep(1000)`
(ms), `panic`, `off`, with an optional `N*` count or `P%` chance in front.

The undo is a shell command, replayable by `kubedrill heal` after the runner was killed: it
disarms the failpoint, waiting (bounded) for the member's endpoint when the member is down,
since a `panic` term crashes it and the supervisor restarts it, and a restarted member has
nothing armed (failpoints live in the process). It ends by checking that the failpoint reads
disabled, so a heal that reports success means nothing is left armed.
"""

from __future__ import annotations

import re
import shlex
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubedrill.errors import ConfigError
from kubedrill.faults.base import FaultPlan
from kubedrill.faults.shape import Selector
from kubedrill.faults.victims import NEEDS_LEADER, resolve_victims
from kubedrill.transport.step import Step

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# gofail's <term>: [<float>"%"][<int>"*"]<action>[(<argument>)]; the actions kubedrill arms.
_TERM = re.compile(r"(\d+(\.\d+)?%)?(\d+\*)?(off|panic|sleep\((\d+)\)|print|break)")
DISABLED = "failpoint is disabled"
# How long an undo waits for a crashed member's endpoint to answer again (the supervisor
# restarts it with back-off: 0.5 s, doubling per quick crash, at most 10 s by default).
DISARM_WAIT_S = 60


def check_failpoint(name: str, term: str) -> None:
    """A ConfigError (one line, before anything is armed) for a name or term gofail would
    refuse or kubedrill does not arm."""
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"failpoint name {name!r} is invalid",
            "use a name etcd declares, e.g. raftBeforeSave (GET / on a member lists them)",
        )
    if not _TERM.fullmatch(term):
        raise ConfigError(
            f"failpoint term {term!r} for {name} is invalid",
            "use off, panic, sleep(<ms>), print or break, optionally after N* or P%",
        )


def sleep_ms(term: str) -> int | None:
    """The sleep of a `sleep(<ms>)` term, else None."""
    match = _TERM.fullmatch(term)
    return int(match.group(5)) if match and match.group(5) else None


def crashes(term: str) -> bool:
    """A term that takes the member down (the quorum guard counts it)."""
    match = _TERM.fullmatch(term)
    return bool(match and match.group(4) == "panic")


def arm_argv(url: str, name: str, term: str) -> tuple[str, ...]:
    return (
        "curl",
        "-sS",
        "--fail-with-body",
        "--max-time",
        "5",
        "-X",
        "PUT",
        "--data-raw",
        term,
        f"{url}/{name}",
    )


def disarm_script(url: str, name: str, wait_s: int = DISARM_WAIT_S) -> str:
    """Disarm `name` at `url`, waiting up to `wait_s` for a member that is down (restarting);
    then check it reads disabled. Idempotent: disarming a disabled failpoint is answered 400
    and changes nothing."""
    target = shlex.quote(f"{url}/{name}")
    return (
        f"u={target}; "
        f"curl -sS -o /dev/null --max-time 5 --retry {wait_s} --retry-delay 1 "
        '--retry-connrefused -X DELETE "$u" || '
        f'{{ echo "no answer from $u within {wait_s} s: is the etcd member running? '
        '(kubedrill lab status)" >&2; exit 1; }; '
        'state=$(curl -sS --max-time 5 "$u"); '
        f'case "$state" in *"{DISABLED}"*) exit 0 ;; esac; '
        'echo "failpoint still armed after DELETE: $u = $state" >&2; exit 1'
    )


@dataclass(frozen=True)
class ArmFailpoint:
    """Arm `failpoint` with `term` on the chosen etcd member(s) until heal."""

    failpoint: str
    term: str
    victims: Selector = field(default_factory=Selector.leader)
    disarm_wait_s: int = DISARM_WAIT_S

    def __post_init__(self) -> None:
        check_failpoint(self.failpoint, self.term)

    @property
    def name(self) -> str:
        return f"failpoint {self.failpoint}={self.term}"

    def available(self, cluster: Cluster) -> str | None:
        urls = cluster.etcd.failpoint_urls
        if not urls:
            return (
                f"{cluster.name}'s etcd is not built with failpoints; run on a lab with "
                "lab.etcd.failpoints: true (fixtures/labs/failpoints-etcd.yaml, "
                "make drill-disk-failpoints)"
            )
        if self.victims.kind in NEEDS_LEADER and "etcd" not in cluster.leader_locators:
            return f"{cluster.target} target cannot tell which etcd member leads"
        declared = list_failpoints(next(iter(urls.values())))
        if declared is not None and self.failpoint not in declared:
            return f"etcd {cluster.facts.etcd_version or ''} declares no failpoint {self.failpoint}"
        return None

    def plan(self, cluster: Cluster) -> FaultPlan:
        victims = resolve_victims(cluster, "etcd", self.victims)
        urls = cluster.etcd.failpoint_urls
        inject = tuple(
            Step(cluster.observer, arm_argv(urls[n], self.failpoint, self.term))
            for n in victims.names
        )
        undo = tuple(
            Step(
                cluster.observer,
                ("sh", "-c", disarm_script(urls[n], self.failpoint, self.disarm_wait_s)),
                timeout=self.disarm_wait_s * 6 + 15,
            )
            for n in victims.names
        )
        role = "leader " if victims.include_leader else ""
        return FaultPlan(
            name=self.name,
            victims=victims.names,
            description=f"arm failpoint {self.failpoint}={self.term} on {role}etcd "
            f"{', '.join(victims.names)}",
            inject=inject,
            undo=undo,
            takes_down=frozenset((n, "etcd") for n in victims.names)
            if crashes(self.term)
            else frozenset(),
            claims=frozenset(f"failpoint {self.failpoint} on {n}" for n in victims.names),
            data={
                "component": "etcd",
                "failpoint": self.failpoint,
                "term": self.term,
                "leader_before": victims.leader or "",
            },
        )


# -- reading a member's failpoints -------------------------------------------------------------


def _get(url: str, timeout: float) -> tuple[int, str] | None:
    """(status, body) of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return None


def list_failpoints(url: str, timeout: float = 2.0) -> dict[str, str] | None:
    """name -> term (empty when disarmed) of every failpoint the member declares; None when
    its endpoint does not answer."""
    got = _get(f"{url}/", timeout)
    if got is None or got[0] != 200:
        return None
    return parse_listing(got[1])


def parse_listing(text: str) -> dict[str, str]:
    """gofail's `GET /`: one `name=term` per line."""
    found = {}
    for line in text.splitlines():
        name, sep, term = line.partition("=")
        if sep and name:
            found[name.strip()] = term.strip()
    return found


def armed_term(url: str, name: str, timeout: float = 1.0) -> str | None:
    """The term `name` is armed with on the member at `url`; None when it is disabled or the
    member does not answer."""
    got = _get(f"{url}/{name}", timeout)
    if got is None or got[0] != 200:
        return None
    return got[1].strip() or None


def hit_count(url: str, name: str, timeout: float = 1.0) -> int | None:
    """How often the armed failpoint has been evaluated since armed (None: disarmed or no
    answer)."""
    got = _get(f"{url}/{name}/count", timeout)
    if got is None or got[0] != 200:
        return None
    try:
        return int(got[1].strip())
    except ValueError:
        return None
