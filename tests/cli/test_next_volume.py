"""``backerd next-volume``: what it takes from tar's environment."""

from __future__ import annotations

import pytest

from backerd.cli.next_volume import tar_context


@pytest.mark.parametrize(("env", "expected"), [
    ({"TAR_VOLUME": "2", "TAR_ARCHIVE": "/dev/nbacker0", "TAR_SUBCOMMAND": "-c"},
     (2, "/dev/nbacker0", True)),
    ({"TAR_VOLUME": "7", "TAR_SUBCOMMAND": "-x"}, (7, "", False)),
    ({"TAR_VOLUME": "3", "TAR_SUBCOMMAND": "-t"}, (3, "", False)),
    ({"TAR_VOLUME": "3", "TAR_SUBCOMMAND": "-d"}, (3, "", False)),
    ({"TAR_SUBCOMMAND": "-r"}, (None, "", True)),
    ({"TAR_SUBCOMMAND": "-u"}, (None, "", True)),
    ({"TAR_SUBCOMMAND": "-A"}, (None, "", True)),
    ({}, (None, "", True)),  # by hand: the checks for writing apply
    ({"TAR_VOLUME": "x2"}, (None, "", True)),
])
def test_tar_context(env: dict[str, str], expected: tuple) -> None:
    assert tar_context(env) == expected
