"""The [[job]] rule table: defaults, every key's type and check, cross-job rules."""

from __future__ import annotations

import pytest

from backerd.daemon.config import parse_config
from backerd.errors import ConfigError
from backerd.jobs.config import KEYS, FullEvery, JobConfig, find_job, parse_full_every, parse_jobs

GOOD = {"name": "home", "paths": ["/home"]}


def test_defaults() -> None:
    [job] = parse_jobs([GOOD], {0})
    assert job == JobConfig("home", ("/home",), 0, (), FullEvery(7, "days"), True, 4)


def test_every_key() -> None:
    [job] = parse_jobs([{**GOOD, "unit": 1, "exclude": ["*.cache"], "full_every": "3 runs",
                         "verify": False, "keep": 2, "next_cassette": "/t/v$TAR_VOLUME.img",
                         "change_timeout": 60}], {0, 1})
    assert job == JobConfig("home", ("/home",), 1, ("*.cache",), FullEvery(3, "runs"),
                            False, 2, "/t/v$TAR_VOLUME.img", 60)


@pytest.mark.parametrize(("text", "expected"), [
    (7, FullEvery(7, "days")), ("1 day", FullEvery(1, "days")), ("2 runs", FullEvery(2, "runs")),
    ("1 run", FullEvery(1, "runs")), (" 10days ", FullEvery(10, "days")),
    (0, None), ("0 runs", None), ("weekly", None), (True, None), (1.5, None), ("-1 days", None),
])
def test_full_every(text: object, expected: FullEvery | None) -> None:
    assert parse_full_every(text) == expected


BAD = [
    ({"paths": ["/home"]}, "job[0].name: required"),
    ({"name": "home"}, "job[0].paths: required"),
    ({**GOOD, "name": ""}, "job[0].name: must be"),
    ({**GOOD, "name": "a b"}, "job[0].name: must be"),
    ({**GOOD, "name": 3}, "job[0].name: expected str"),
    ({**GOOD, "paths": []}, "job[0].paths: must name at least one path"),
    ({**GOOD, "paths": ["home"]}, "absolute path"),
    ({**GOOD, "paths": [3]}, "absolute path"),
    ({**GOOD, "paths": "/home"}, "job[0].paths: expected list"),
    ({**GOOD, "paths": ["/a\nb"]}, "newline"),
    ({**GOOD, "exclude": [""]}, "job[0].exclude: every pattern"),
    ({**GOOD, "unit": True}, "job[0].unit: expected int, got bool"),
    ({**GOOD, "unit": 64}, "job[0].unit: must be 0..63"),
    ({**GOOD, "unit": 1}, "job[0].unit: no unit 1 is configured"),
    ({**GOOD, "full_every": 0}, "job[0].full_every: expected"),
    ({**GOOD, "full_every": "often"}, "job[0].full_every: expected"),
    ({**GOOD, "verify": "yes"}, "job[0].verify: expected bool"),
    ({**GOOD, "keep": 0}, "job[0].keep: must keep at least 1"),
    ({**GOOD, "keep": 2.0}, "job[0].keep: expected int"),
    ({**GOOD, "when": "nightly"}, "job[0].when: unknown key"),
    ({**GOOD, "next_cassette": "/srv/tapes/next.img"}, "job[0].next_cassette: must hold"),
    ({**GOOD, "next_cassette": "/t/$TAR_VOLUME\n"}, "job[0].next_cassette: must not hold"),
    ({**GOOD, "next_cassette": 2}, "job[0].next_cassette: expected str"),
    ({**GOOD, "change_timeout": 0}, "job[0].change_timeout: must be at least 1"),
    ({**GOOD, "change_timeout": "1h"}, "job[0].change_timeout: expected int"),
]


@pytest.mark.parametrize(("table", "message"), BAD)
def test_bad_tables_name_the_key(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_jobs([table], {0})


def test_every_key_of_the_table_is_exercised() -> None:
    assert {m.split(".")[1].split(":")[0] for _, m in BAD if m.startswith("job[0].")} \
        >= set(KEYS)


def test_names_are_unique_and_tables_are_tables() -> None:
    with pytest.raises(ConfigError, match=r"job\[1\].name: job 'home' is defined twice"):
        parse_jobs([GOOD, GOOD], {0})
    with pytest.raises(ConfigError, match=r"job\[0\]: expected a table"):
        parse_jobs(["home"], {0})
    with pytest.raises(ConfigError, match="job: expected"):
        parse_jobs({"name": "x"}, {0})


def test_find_job() -> None:
    jobs = parse_jobs([GOOD], {0})
    assert find_job(jobs, "home").name == "home"
    with pytest.raises(ConfigError, match="no job named 'etc'.*jobs: home"):
        find_job(jobs, "etc")


def test_the_daemon_configuration_carries_jobs() -> None:
    config = parse_config({"job": [{**GOOD, "unit": 2}], "unit": [{"number": 2}]}, environ={})
    assert [(j.name, j.unit) for j in config.jobs] == [("home", 2)]
    with pytest.raises(ConfigError, match=r"job\[0\].unit: no unit 0 is configured \(units: 2\)"):
        parse_config({"job": [GOOD], "unit": [{"number": 2}]}, environ={})
    assert parse_config({}, environ={}).jobs == ()
