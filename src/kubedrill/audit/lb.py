"""The load balancer's health checks of the apiservers (the seed's section 4: HAProxy
`check fall 3 rise 2 inter 2000`; kubedrill's lab checks `GET /readyz`).

Parsed from the LB's own config: HAProxy's `haproxy.cfg` (the `-f` file of its command line,
else /etc/haproxy/haproxy.cfg), nginx's stream upstreams (the `-c` file of its command line,
else /etc/nginx/nginx.conf) or Envoy's `cds.yaml` (kind's load balancer). Judged:
no check on the backends fails, and so does a detection time (`inter x fall`) above the
`detect` budget (15 s); a TCP-only check or another path than /readyz (an apiserver that is
shutting down or has lost etcd still answers /healthz and TCP) warns, as do checks faster than
every 0.5 s or a return to service slower than 30 s. Open-source nginx checks passively only
(`max_fails` failed client connections within `fail_timeout`): it warns, since an apiserver that
accepts connections but is not ready keeps getting requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from kubedrill.audit.finding import Judgement, worst
from kubedrill.audit.flags import go_duration

DETECT_BUDGET_S = 15.0  # kubedrill.budgets "detect"
HAPROXY_DEFAULT_CFG = "/etc/haproxy/haproxy.cfg"
NGINX_DEFAULT_CFG = "/etc/nginx/nginx.conf"
ENVOY_CDS = "/home/envoy/cds.yaml"  # kind's load balancer


@dataclass(frozen=True)
class HealthCheck:
    """One backend's health check, as configured."""

    backend: str
    kind: str  # "http" | "tcp" | "passive" (nginx's max_fails) | "none"
    path: str
    inter_s: float
    fall: int
    rise: int
    servers: int
    checked: int  # servers with health checks on


def haproxy_time(text: str) -> float | None:
    """HAProxy's time format: milliseconds by default, or with a unit (us, ms, s, m, h, d)."""
    units = {"us": 1e-6, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    for unit in ("us", "ms", "s", "m", "h", "d"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * units[unit]
    return float(text) / 1000 if text.isdigit() else None


SECTIONS = frozenset(
    [
        "global",
        "defaults",
        "frontend",
        "backend",
        "listen",
        "resolvers",
        "peers",
        "userlist",
        "program",
        "http-errors",
        "ring",
        "cache",
        "mailers",
        "crt-store",
        "traces",
    ]
)


def _server_params(words: Sequence[str], into: dict[str, str]) -> None:
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("inter", "fall", "rise") and i + 1 < len(words):
            into[word] = words[i + 1]
            i += 2
            continue
        if word in ("check", "no-check"):
            into["check"] = "yes" if word == "check" else "no"
        i += 1


def parse_haproxy(text: str) -> list[HealthCheck]:
    """Backends (and listen sections) that have servers, with their checks."""
    sections: list[tuple[str, str, list[list[str]]]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] in SECTIONS:
            sections.append((words[0], words[1] if len(words) > 1 else "", []))
        elif sections:
            sections[-1][2].append(words)
    defaults: dict[str, str] = {}
    default_chk: tuple[str, str] = ("", "")
    found: list[HealthCheck] = []
    for kind, name, lines in sections:
        if kind == "defaults":
            defaults, default_chk, _ = _section(lines, {}, ("", ""))
        elif kind in ("backend", "listen"):
            params, chk, servers = _section(lines, defaults, default_chk)
            if servers:
                found.append(_backend(name, params, chk, servers))
    return found


def _section(
    lines: Sequence[Sequence[str]], params: dict[str, str], chk: tuple[str, str]
) -> tuple[dict[str, str], tuple[str, str], list[dict[str, str]]]:
    """A section's default-server parameters, check kind and servers."""
    params = dict(params)
    servers: list[dict[str, str]] = []
    for words in lines:
        if words[0] == "default-server":
            _server_params(words[1:], params)
        elif words[0] == "server":
            own = dict(params)
            _server_params(words[3:], own)
            servers.append(own)
        chk = _check_kind(words, chk)
    return params, chk, servers


def _backend(
    name: str, params: dict[str, str], chk: tuple[str, str], servers: list[dict[str, str]]
) -> HealthCheck:
    checked = [s for s in servers if s.get("check") == "yes"]
    first = checked[0] if checked else params
    check_kind = (chk[0] or "tcp") if checked else "none"
    return HealthCheck(
        backend=name,
        kind=check_kind,
        path=chk[1] if check_kind == "http" else "",
        inter_s=haproxy_time(first.get("inter", "2000")) or 2.0,
        fall=int(first.get("fall", "3")),
        rise=int(first.get("rise", "2")),
        servers=len(servers),
        checked=len(checked),
    )


def _check_kind(words: Sequence[str], current: tuple[str, str]) -> tuple[str, str]:
    """("http", path) from `option httpchk [METH] URI` or `http-check send ... uri URI`."""
    if words[:2] == ["option", "httpchk"]:
        rest = list(words[2:])
        uri = next((w for w in rest if w.startswith("/")), "/")
        return ("http", uri)
    if words[:2] == ["http-check", "send"] and "uri" in words:
        return ("http", words[words.index("uri") + 1])
    if words[:2] == ["option", "tcp-check"] and not current[0]:
        return ("tcp", "")
    return current


def parse_envoy_cds(text: str) -> list[HealthCheck]:
    """Envoy clusters (a `resources:` list, as kind writes it) with their health checks."""
    try:
        doc: Any = yaml.safe_load(text)
        resources = doc.get("resources") or []
    except (yaml.YAMLError, AttributeError):
        return []
    found: list[HealthCheck] = []
    for res in resources:
        if not isinstance(res, dict):
            continue
        endpoints = [
            e
            for group in (res.get("load_assignment") or {}).get("endpoints") or []
            for e in group.get("lb_endpoints") or []
        ]
        checks = res.get("health_checks") or []
        if not checks:
            found.append(
                HealthCheck(str(res.get("name", "")), "none", "", 0, 0, 0, len(endpoints), 0)
            )
            continue
        hc = checks[0]
        http = hc.get("http_health_check")
        found.append(
            HealthCheck(
                backend=str(res.get("name", "")),
                kind="http" if http is not None else "tcp",
                path=str((http or {}).get("path", "")),
                inter_s=go_duration(str(hc.get("interval", "0s"))) or 0.0,
                fall=int(hc.get("unhealthy_threshold", 1)),
                rise=int(hc.get("healthy_threshold", 1)),
                servers=len(endpoints),
                checked=len(endpoints),
            )
        )
    return found


def _nginx_statements(text: str) -> list[list[str]]:
    """nginx's config as statements: words up to `;`, `{` or `}` (comments dropped); a block
    opener keeps `{` as its last word, a closer is `["}"]`."""
    out: list[list[str]] = []
    words: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0]
        for ch in "{};":
            line = line.replace(ch, f" {ch} ")
        for word in line.split():
            if word == ";":
                out.append(words)
                words = []
            elif word in "{}":
                out.append([*words, word] if word == "{" else ["}"])
                words = []
            else:
                words.append(word)
    return [w for w in out if w]


def parse_nginx(text: str) -> list[HealthCheck]:
    """Upstreams with servers. Open-source nginx has no active check: each server's
    `max_fails` (default 1) failed connections within `fail_timeout` (default 10 s) leave it out
    for `fail_timeout`. A `check` line (the third-party upstream check module the seed shows)
    counts as an active TCP or HTTP check."""
    found: list[HealthCheck] = []
    upstream: str | None = None
    servers: list[dict[str, str]] = []
    active: tuple[str, dict[str, str]] | None = None
    for words in _nginx_statements(text):
        if words[0] == "upstream" and words[-1] == "{":
            upstream, servers, active = words[1], [], None
        elif words == ["}"] and upstream is not None:
            if servers:
                found.append(_nginx_upstream(upstream, servers, active))
            upstream = None
        elif upstream is not None and words[0] == "server" and len(words) > 1:
            servers.append(dict(w.split("=", 1) for w in words[2:] if "=" in w))
        elif upstream is not None and words[0] == "check":
            params = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            active = (params.get("type", "tcp"), params)
    return found


def _nginx_upstream(
    name: str, servers: list[dict[str, str]], active: tuple[str, dict[str, str]] | None
) -> HealthCheck:
    if active is not None:
        kind, params = active
        return HealthCheck(
            backend=name,
            kind="http" if kind == "http" else "tcp",
            path="",
            inter_s=float(params.get("interval", "30000")) / 1000,
            fall=int(params.get("fall", "5")),
            rise=int(params.get("rise", "2")),
            servers=len(servers),
            checked=len(servers),
        )
    first = servers[0]
    fails = int(first.get("max_fails", "1"))
    window = haproxy_time(first.get("fail_timeout", "10s")) or 10.0
    return HealthCheck(
        backend=name,
        kind="passive" if fails > 0 else "none",
        path="",
        inter_s=window,
        fall=fails,
        rise=0,
        servers=len(servers),
        checked=len(servers) if fails > 0 else 0,
    )


def judge_check(check: HealthCheck) -> Judgement:
    name = f"backend {check.backend} ({check.servers} servers)"
    if check.kind == "none" or check.checked == 0:
        return Judgement(
            "fail",
            f"{name}: no health checks",
            "enable HTTPS health checks on /readyz for every apiserver (`check`, `option "
            "httpchk GET /readyz`, inter 2000 fall 3 rise 2)",
        )
    if check.kind == "passive":
        return Judgement(
            "warn",
            f"{name}: passive checks only (max_fails {check.fall} within fail_timeout "
            f"{check.inter_s:g} s): a dead apiserver is found by failing client connections, and "
            "one that accepts connections but is not ready (lost etcd) keeps getting requests",
            "check actively: HAProxy with `option httpchk GET /readyz` (inter 2000 fall 3 "
            "rise 2), or an nginx build with an active upstream check",
        )
    timing = f"inter {check.inter_s:g} s fall {check.fall} rise {check.rise}"
    detect = check.inter_s * check.fall
    what = f"{check.kind} check{' ' + check.path if check.path else ''}, {timing}"
    evidence = f"{name}: {what}; a dead apiserver is out after ~{detect:g} s"
    if check.checked < check.servers:
        return Judgement(
            "fail",
            f"{name}: {check.servers - check.checked} servers without `check`",
            "enable health checks on every apiserver",
        )
    if detect > DETECT_BUDGET_S:
        return Judgement(
            "fail",
            evidence,
            f"check faster: inter x fall is {detect:g} s, over the {DETECT_BUDGET_S:g} s detect "
            "budget (seed: inter 2000 fall 3 rise 2)",
        )
    if check.kind == "tcp":
        return Judgement(
            "warn",
            evidence,
            "check HTTPS GET /readyz instead of TCP: an apiserver that lost etcd still accepts "
            "connections",
        )
    if check.path.split("?", 1)[0] != "/readyz":
        return Judgement(
            "warn",
            evidence,
            f"check /readyz instead of {check.path}: /readyz fails first when an apiserver "
            "shuts down or loses etcd",
        )
    if check.inter_s < 0.5 or check.inter_s * check.rise > 30:
        return Judgement("warn", evidence, "use the seed's timing: inter 2000 fall 3 rise 2")
    return Judgement("pass", evidence)


def judge_checks(checks: Sequence[HealthCheck], source: str) -> Judgement:
    """Every backend found in one LB's config (`source` names the file)."""
    if not checks:
        return Judgement(
            "fail",
            f"{source}: no backend with servers",
            "put every apiserver behind the load balancer with health checks on /readyz",
        )
    judged = [judge_check(c) for c in checks]
    status = worst(j.status for j in judged)
    shown = next(j for j in judged if j.status == status)
    details = tuple(f"{j.status.upper():4s} {j.evidence}" for j in judged)
    return Judgement(status, f"{source}: {shown.evidence}", shown.fix, details)
