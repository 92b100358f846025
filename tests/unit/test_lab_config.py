"""Lab configuration: strict YAML parsing, validation and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.errors import ConfigError
from kubedrill.targets.lab.config import (
    ETCD_VERSION,
    EtcdSettings,
    LabConfig,
    SupervisorSettings,
    default_cache_dir,
    load_lab_config,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("KUBEDRILL_BIN_DIR", "KUBEDRILL_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


class Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def __call__(self, text: str) -> Path:
        self.count += 1
        path = self.root / f"lab{self.count}.yaml"
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    return Writer(tmp_path)


def config_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_lab_config(path)
    return info.value


GOOD = """\
lab:
  name: drill2
  topology: etcd
  members: 5
  subnet: 10.99.0.0/24
  state_root: ~/labs
  bin_dir: /opt/kd/bin
  etcd:
    version: v3.6.15
    heartbeat_interval_ms: 50
    election_timeout_ms: 250
    snapshot_count: 5000
    auto_compaction_retention: 5
    extra_flags: ["--log-level=debug", "--experimental-x=true"]
  supervisor:
    backoff_initial_s: 1
    backoff_max_s: 2.5
"""


def test_good_file_parses(write: Writer, tmp_path: Path) -> None:
    config = load_lab_config(write(GOOD))
    assert config.name == "drill2"
    assert config.topology == "etcd"
    assert config.members == 5
    assert config.subnet == "10.99.0.0/24"
    assert config.state_root == tmp_path / "home" / "labs"  # ~ expanded
    assert config.state_dir == tmp_path / "home" / "labs" / "drill2"
    assert config.bin_dir == Path("/opt/kd/bin")
    assert config.etcd == EtcdSettings(
        version="v3.6.15",
        heartbeat_interval_ms=50,
        election_timeout_ms=250,
        snapshot_count=5000,
        auto_compaction_retention="5",
        extra_flags=("--log-level=debug", "--experimental-x=true"),
    )
    assert config.supervisor == SupervisorSettings(backoff_initial_s=1.0, backoff_max_s=2.5)
    assert isinstance(config.supervisor.backoff_initial_s, float)


def test_defaults(write: Writer, tmp_path: Path) -> None:
    for config in (load_lab_config(), load_lab_config(write("")), load_lab_config(write("lab:\n"))):
        assert config.name == "lab"
        assert config.members == 3
        assert config.subnet == "10.213.7.0/24"
        assert config.state_dir == Path("/var/lib/kubedrill/labs/lab")
        assert config.bin_dir is None
        assert config.cache_dir == tmp_path / "home" / ".cache" / "kubedrill"
        assert config.etcd.version == ETCD_VERSION
        assert config.etcd.heartbeat_interval_ms == 100
        assert config.etcd.election_timeout_ms == 1000
        assert config.supervisor == SupervisorSettings()


# --- unknown fields ---------------------------------------------------------------------------


def test_unknown_field_is_named(write: Writer) -> None:
    err = config_error(write("lab:\n  membres: 3\n"))
    assert err.message == "unknown field lab.membres"
    assert "members" in err.hint
    assert "subnet" in err.hint


def test_unknown_nested_field_is_named(write: Writer) -> None:
    err = config_error(write("lab:\n  etcd:\n    heartbeat_ms: 100\n"))
    assert err.message == "unknown field lab.etcd.heartbeat_ms"
    assert "heartbeat_interval_ms" in err.hint


def test_unknown_supervisor_field_is_named(write: Writer) -> None:
    err = config_error(write("lab:\n  supervisor:\n    backoff: 1\n"))
    assert err.message == "unknown field lab.supervisor.backoff"


@pytest.mark.parametrize(
    "text", ["labs:\n  members: 3\n", "lab: {}\nextra: 1\n", "- lab\n", "just a string\n"]
)
def test_top_level_must_be_only_lab(write: Writer, text: str) -> None:
    err = config_error(write(text))
    assert "must have a single top-level key 'lab'" in err.message


# --- wrong types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("members: '3'", "lab.members must be an integer, got '3'"),
        ("members: true", "lab.members must be an integer, got True"),
        ("members: 3.0", "lab.members must be an integer, got 3.0"),
        (
            "etcd:\n    heartbeat_interval_ms: 1.5",
            "lab.etcd.heartbeat_interval_ms must be an integer",
        ),
        ("etcd:\n    client_port: [2379]", "lab.etcd.client_port must be an integer"),
        (
            "supervisor:\n    backoff_initial_s: 1s",
            "lab.supervisor.backoff_initial_s must be a number",
        ),
        ("supervisor:\n    backoff_max_s: false", "lab.supervisor.backoff_max_s must be a number"),
        ("name: [a]", "lab.name must be a string"),
        ("subnet: {a: 1}", "lab.subnet must be a string"),
        ("etcd:\n    version: 3.6", "lab.etcd.version must be a string, got 3.6"),
        ("etcd: 5", "lab.etcd must be a mapping, got int"),
        ("etcd:", "lab.etcd must be a mapping, got NoneType"),
        ("supervisor: [1]", "lab.supervisor must be a mapping, got list"),
        ("etcd:\n    extra_flags: --x=1", "lab.etcd.extra_flags must be a list, got '--x=1'"),
        ("etcd:\n    extra_flags: [1]", "lab.etcd.extra_flags[0] must be a string, got 1"),
        ("etcd:\n    failpoints: yes please", "lab.etcd.failpoints must be true or false"),
        ("etcd:\n    failpoints: 1", "lab.etcd.failpoints must be true or false"),
        ("etcd:\n    failpoints_port: 0", "lab.etcd.failpoints_port 0 is not a TCP port"),
    ],
)
def test_wrong_types_name_the_field(write: Writer, yaml_text: str, message: str) -> None:
    err = config_error(write("lab:\n  " + yaml_text + "\n"))
    assert err.message.startswith(message)


def test_lab_section_must_be_a_mapping(write: Writer) -> None:
    err = config_error(write("lab: [1, 2]\n"))
    assert err.message == "lab must be a mapping, got list"


@pytest.mark.parametrize("value", ["[]", "''", "0"])
def test_lab_section_falsy_non_mapping_is_rejected(write: Writer, value: str) -> None:
    err = config_error(write(f"lab: {value}\n"))
    assert "lab must be a mapping" in err.message


@pytest.mark.parametrize("field", ["state_root", "cache_dir", "bin_dir"])
def test_path_fields_reject_non_strings(write: Writer, field: str) -> None:
    err = config_error(write(f"lab:\n  {field}: [a, b]\n"))
    assert f"lab.{field}" in err.message


@pytest.mark.parametrize("field", ["state_root", "cache_dir"])
def test_required_path_fields_reject_null(write: Writer, field: str) -> None:
    err = config_error(write(f"lab:\n  {field}: null\n"))
    assert f"lab.{field}" in err.message


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subnet", "fragment"),
    [
        ("10.0.0.0/33", "is not a network"),
        ("not-a-net", "is not a network"),
        ("10.0.0.1/24", "is not a network"),  # host bits set
        ("300.0.0.0/24", "is not a network"),
        ("fd00::/64", "too small or not IPv4"),
        ("10.0.0.0/27", "too small or not IPv4"),
        ("10.0.0.0/32", "too small or not IPv4"),
    ],
)
def test_bad_subnet(write: Writer, subnet: str, fragment: str) -> None:
    err = config_error(write(f"lab:\n  subnet: '{subnet}'\n"))
    assert err.message.startswith("lab.subnet")
    assert fragment in err.message


@pytest.mark.parametrize("subnet", ["10.1.2.0/24", "172.20.0.0/16", "192.168.5.64/26"])
def test_good_subnets(write: Writer, subnet: str) -> None:
    assert load_lab_config(write(f"lab:\n  subnet: {subnet}\n")).subnet == subnet


@pytest.mark.parametrize("members", [0, 2, 4, 6, 8, 9, -1])
def test_members_must_be_odd_and_small(write: Writer, members: int) -> None:
    err = config_error(write(f"lab:\n  members: {members}\n"))
    assert err.message == f"lab.members is {members}"
    assert "odd" in err.hint


@pytest.mark.parametrize("members", [1, 3, 5, 7])
def test_members_allowed(write: Writer, members: int) -> None:
    assert load_lab_config(write(f"lab:\n  members: {members}\n")).members == members


@pytest.mark.parametrize(
    ("heartbeat", "election"), [(100, 499), (100, 100), (200, 999), (0, 1000), (-10, 1000)]
)
def test_election_must_be_5x_heartbeat(write: Writer, heartbeat: int, election: int) -> None:
    text = (
        f"lab:\n  etcd:\n    heartbeat_interval_ms: {heartbeat}\n"
        f"    election_timeout_ms: {election}\n"
    )
    err = config_error(write(text))
    assert "lab.etcd.election_timeout_ms" in err.message
    assert "heartbeat_interval_ms" in err.message


def test_election_exactly_5x_is_fine(write: Writer) -> None:
    text = "lab:\n  etcd:\n    heartbeat_interval_ms: 100\n    election_timeout_ms: 500\n"
    assert load_lab_config(write(text)).etcd.election_timeout_ms == 500


@pytest.mark.parametrize("name", ["Lab", "1lab", "lab-one", "abcdefghi", "", "la b"])
def test_bad_name(write: Writer, name: str) -> None:
    err = config_error(write(f"lab:\n  name: '{name}'\n"))
    assert err.message.startswith("lab.name")


def test_name_with_trailing_newline_is_rejected(write: Writer) -> None:
    err = config_error(write('lab:\n  name: "lab\\n"\n'))
    assert err.message.startswith("lab.name")


def test_integer_name_is_refused_as_not_a_string(write: Writer) -> None:
    err = config_error(write("lab:\n  name: 123\n"))
    assert err.message == "lab.name must be a string, got 123"


def test_unknown_topology(write: Writer) -> None:
    err = config_error(write("lab:\n  topology: mesh\n"))
    assert err.message == "lab.topology 'mesh' is unknown"
    assert "etcd, stacked, external" in err.hint


def test_invalid_yaml(write: Writer) -> None:
    err = config_error(write("lab:\n  members: [3\n"))
    assert "is not valid YAML" in err.message


def test_missing_file(tmp_path: Path) -> None:
    err = config_error(tmp_path / "nope.yaml")
    assert err.message.startswith("cannot read lab config")
    assert "--config" in err.hint


# --- overrides and environment ----------------------------------------------------------------


def test_overrides_win_over_the_file_and_none_is_ignored(write: Writer) -> None:
    path = write("lab:\n  members: 5\n  name: fromfile\n")
    config = load_lab_config(path, members=7, name=None, subnet="10.50.0.0/24")
    assert config.members == 7
    assert config.name == "fromfile"
    assert config.subnet == "10.50.0.0/24"


def test_overrides_are_validated(write: Writer) -> None:
    with pytest.raises(ConfigError, match=r"lab\.members is 4"):
        load_lab_config(None, members=4)


def test_env_bin_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEDRILL_BIN_DIR", "/srv/bins")
    assert load_lab_config().bin_dir == Path("/srv/bins")
    assert load_lab_config(None, bin_dir=Path("/x")).bin_dir == Path("/x")


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "kubedrill"
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert default_cache_dir() == Path("/xdg/kubedrill")
    monkeypatch.setenv("KUBEDRILL_CACHE_DIR", "/explicit")
    assert default_cache_dir() == Path("/explicit")


def test_validate_returns_self() -> None:
    config = LabConfig()
    assert config.validate() is config


def test_failpoints_are_off_by_default_and_read_from_the_file(write: Writer) -> None:
    assert LabConfig().etcd.failpoints is False
    config = load_lab_config(write("lab:\n  etcd:\n    failpoints: true\n"))
    assert config.etcd.failpoints is True
    assert config.etcd.failpoints_port == 22381


def test_the_failpoints_fixture_is_a_valid_lab_of_its_own() -> None:
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "labs" / "failpoints-etcd.yaml"
    config = load_lab_config(fixture)
    assert config.etcd.failpoints
    assert (config.name, config.topology, config.members) == ("fpoint", "etcd", 3)
    assert config.subnet == "10.213.82.0/24"
