"""etcd access as undo-record arguments: the round trip, and bad input refused in one line."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kubedrill.cli import main
from kubedrill.cluster import EtcdAccess, TLSFiles
from kubedrill.disaster.access_args import access_argv, access_from_args, add_access_arguments
from kubedrill.errors import ConfigError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_access_arguments(parser)
    return parser.parse_args(argv)


def test_round_trip_with_tls() -> None:
    access = EtcdAccess(
        {"etcd-2": "https://10.0.0.2:2379", "etcd-1": "https://10.0.0.1:2379"},
        TLSFiles(Path("/p/ca.crt"), Path("/p/c.crt"), Path("/p/c.key")),
    )
    back = access_from_args(parse(access_argv(access)))
    assert dict(back.endpoints) == dict(access.endpoints)
    assert back.tls == access.tls


def test_round_trip_plain() -> None:
    access = EtcdAccess({"a": "http://127.0.0.1:2379"}, None)
    assert access_from_args(parse(access_argv(access))).tls is None


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--endpoint=etcd-1"],
        ["--endpoint=etcd-1=10.0.0.1:2379"],
        ["--endpoint=a=https://x:1", "--cacert=/ca"],
    ],
)
def test_bad_access_is_refused(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        access_from_args(parse(argv))


def test_recover_refuses_keys_outside_kubedrill(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["etcd", "recover-nospace", "--endpoint=a=http://127.0.0.1:1", "--delete-prefix=/registry/"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err[0].startswith("kubedrill: error:") and "/registry/" in err[0]
    assert "kubedrill deletes only its own keys" in err[-1]  # the hint
