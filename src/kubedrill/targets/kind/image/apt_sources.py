"""Which Debian mirror to bootstrap from: the one this machine's apt is already configured for.

The node's root file system is made with debootstrap, and only the mirror that apt uses here is
known to be reachable; so kubedrill never names a mirror itself but reads it at run time from
/etc/apt/sources.list and /etc/apt/sources.list.d/ (one-line `.list` and deb822 `.sources`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kubedrill.errors import ConfigError

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class AptSource:
    """One `deb` entry: a URI, the suites it serves, components and its keyring (if named)."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str = ""

    def line(self, suite: str) -> str:
        """This source as a one-line sources.list entry for `suite`."""
        options = f" [signed-by={self.signed_by}]" if self.signed_by else ""
        return f"deb{options} {self.uri} {suite} {' '.join(self.components)}"


def parse_deb822(text: str) -> list[AptSource]:
    """Stanzas of a `.sources` file with `Types: deb` (and `Enabled` not `no`)."""
    out: list[AptSource] = []
    for stanza in _stanzas(text):
        if "deb" not in stanza.get("types", "").split():
            continue
        if stanza.get("enabled", "yes").lower() == "no":
            continue
        suites = tuple(stanza.get("suites", "").split())
        components = tuple(stanza.get("components", "").split())
        signed_by = stanza.get("signed-by", "")
        signed_by = signed_by if signed_by.startswith("/") and "\n" not in signed_by else ""
        for uri in stanza.get("uris", "").split():
            out.append(AptSource(uri.rstrip("/"), suites, components, signed_by))
    return out


def _stanzas(text: str) -> Iterable[dict[str, str]]:
    current: dict[str, str] = {}
    key = ""
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                yield current
            current, key = {}, ""
            continue
        if raw[0] in " \t" and key:  # continuation line (e.g. an inline key block)
            current[key] += "\n" + raw.strip()
            continue
        name, sep, value = raw.partition(":")
        if sep:
            key = name.strip().lower()
            current[key] = value.strip()


def parse_one_line(text: str) -> list[AptSource]:
    """`deb [options] uri suite [component...]` lines of a `.list` file."""
    out: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = line[len("deb ") :].strip()
        options: dict[str, str] = {}
        if rest.startswith("["):
            inside, _, rest = rest[1:].partition("]")
            for item in inside.split():
                name, _, value = item.partition("=")
                options[name] = value
        words = rest.split()
        if len(words) < 2:
            continue
        out.append(
            AptSource(
                words[0].rstrip("/"),
                (words[1],),
                tuple(words[2:]),
                options.get("signed-by", ""),
            )
        )
    return out


def machine_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    """Every enabled `deb` source configured on this machine, in apt's reading order."""
    out: list[AptSource] = []
    main = apt_dir / "sources.list"
    if main.is_file():
        out += parse_one_line(main.read_text())
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                out += parse_one_line(path.read_text())
            elif path.suffix == ".sources":
                out += parse_deb822(path.read_text())
    return out


def sources_for(suite: str, sources: Iterable[AptSource]) -> list[tuple[AptSource, str]]:
    """(source, suite) pairs serving `suite` or its updates/security companions."""
    return [
        (s, name)
        for s in sources
        for name in s.suites
        if name == suite or name.startswith(f"{suite}-")
    ]


def mirror_for(suite: str, sources: Iterable[AptSource]) -> str:
    """The URI that serves `suite` itself (debootstrap's mirror argument)."""
    for source, name in sources_for(suite, sources):
        if name == suite and "main" in source.components:
            return source.uri
    raise ConfigError(
        f"no apt source on this machine serves Debian {suite!r} main",
        f"add a `deb` source for {suite} to /etc/apt/sources.list.d/ (kubedrill bootstraps the "
        "kind node image from the mirror this machine already uses)",
    )


def chroot_sources_list(suite: str, sources: Iterable[AptSource]) -> str:
    """sources.list for the node's root file system: the machine's entries for `suite` (so
    updates and security fixes come with it), one line each."""
    lines = [source.line(name) for source, name in sources_for(suite, sources)]
    return "\n".join(dict.fromkeys(lines)) + "\n"
