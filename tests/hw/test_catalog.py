"""The sidecar catalog of real cassettes behaves like the cassette image's catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from backerd.errors import UsageError
from backerd.hw.catalog import SidecarCatalog
from backerd.vcr.base import RecordingCatalog
from backerd.vcr.sim import Cassette


def exercise(catalog: RecordingCatalog, rec) -> None:  # noqa: ANN001
    catalog.begin_recording(0, "nhs")
    catalog.commit_recording(rec(0, 400))
    catalog.begin_recording(400, "nls")
    catalog.commit_recording(rec(400, 100, mode="nls"))
    catalog.begin_recording(500, "nhs")
    catalog.commit_recording(rec(500, 50))
    catalog.replace_recording(1, rec(400, 100, mode="nls", user_bytes=1234))
    catalog.discard_from(450)  # recording over the second one's middle


def test_same_answers_as_the_cassette_image(tmp_path: Path) -> None:
    from backerd.vcr.base import Recording

    def rec(start: int, fields: int, **kw: object) -> Recording:
        return Recording(start=start, fields=fields, mode=str(kw.pop("mode", "nhs")),
                         **kw)  # type: ignore[arg-type]

    side = SidecarCatalog(tmp_path / "tape.catalog.json")
    image = Cassette.create(tmp_path / "t.cassette", "ntsc", "E-30", sync=False)
    assert isinstance(side, RecordingCatalog)
    exercise(side, rec)
    exercise(image, rec)
    assert side.recordings == image.recordings
    again = SidecarCatalog(tmp_path / "tape.catalog.json")
    assert again.recordings == side.recordings and again.interrupted is None
    image.close()


def test_journal_left_by_a_crash_is_an_interrupted_recording(tmp_path: Path) -> None:
    side = SidecarCatalog(tmp_path / "c.json")
    side.begin_recording(0, "phs", "3.102")
    again = SidecarCatalog(tmp_path / "c.json")
    assert again.interrupted is not None and again.interrupted.mode == "phs"
    again.forget_interrupted()
    assert SidecarCatalog(tmp_path / "c.json").interrupted is None


def test_damaged_sidecar_is_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(UsageError, match="move it away"):
        SidecarCatalog(tmp_path / "c.json")
