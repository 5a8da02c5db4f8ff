"""``backerd serve``: which mode a unit gets for the cassette it serves."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import trio

from backerd.cli import main
from backerd.daemon import config as cfg
from backerd.daemon import service
from backerd.errors import ConfigError
from backerd.format.params import Standard
from backerd.format.params import mode as mode_params


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[cfg.Config]:
    """The configuration ``backerd serve`` would run, instead of running it."""
    seen: list[cfg.Config] = []

    async def capture(config: cfg.Config) -> None:
        seen.append(config)

    monkeypatch.setattr(service, "run_until_signalled", capture)
    monkeypatch.setattr("backerd.cli.serve.setup_logging", lambda verbose: None)
    return seen


def config_file(tmp_path: Path, unit: str = "") -> Path:
    f = tmp_path / "b.toml"
    f.write_text(f'state_dir = "{tmp_path}"\nruntime_dir = "{tmp_path}"\n[[unit]]\n{unit}')
    return f


def new_cassette(path: Path, standard: str) -> None:
    assert main(["cassette", "new", str(path), "--standard", standard, "--length", "T-15"]) == 0


def test_pal_cassette_without_a_mode_is_served_in_phs(
    tmp_path: Path, served: list[cfg.Config]
) -> None:
    image = tmp_path / "c.img"
    new_cassette(image, "pal")
    assert main(["serve", "--config", str(config_file(tmp_path)), "--cassette", str(image)]) == 0
    unit_config = served[0].units[0]
    assert unit_config.mode == "phs"
    # and the unit opens: the medium accepts the mode for the cassette
    unit = service.open_sim_unit(unit_config)
    try:
        assert unit.config.mode == "phs"
    finally:
        trio.run(unit.shutdown)


@pytest.mark.parametrize(("standard", "existing"), [("ntsc", True), ("ntsc", False)])
def test_ntsc_and_new_cassettes_get_nhs(
    tmp_path: Path, served: list[cfg.Config], standard: str, existing: bool
) -> None:
    image = tmp_path / "c.img"
    if existing:
        new_cassette(image, standard)
    assert main(["serve", "--config", str(config_file(tmp_path)), "--cassette", str(image)]) == 0
    assert served[0].units[0].mode == "nhs"
    assert served[0].units[0].standard == "ntsc"  # what a new cassette is created in


def test_a_configured_mode_of_the_other_standard_names_the_fix(
    tmp_path: Path, served: list[cfg.Config], capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "c.img"
    new_cassette(image, "pal")
    capsys.readouterr()
    f = config_file(tmp_path, 'mode = "nle"\n')
    assert main(["serve", "--config", str(f), "--cassette", str(image)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and not served
    assert f"{f}: unit[0].mode: mode nle is NTSC but the cassette is PAL" in err
    assert "use a PAL mode (pls, phs, ple, phe)" in err and str(image) in err
    assert "leave mode out" in err
    # a configured mode that fits is kept
    f = config_file(tmp_path, 'mode = "ple"\n')
    assert main(["serve", "--config", str(f), "--cassette", str(image)]) == 0
    assert served[0].units[0].mode == "ple"


def test_resolve_modes_per_unit() -> None:
    table = {"unit": [{"number": 0}, {"number": 1, "mode": "phe"}, {"number": 2},
                      {"number": 3, "mode": "nlr"}]}
    config = cfg.parse_config(table, environ={})
    standards = {0: "pal", 1: "pal", 2: None, 3: "ntsc"}
    resolved = cfg.resolve_modes(config, lambda p: standards[int(p.stem[-1])])
    assert [u.mode for u in resolved.units] == ["phs", "phe", "nhs", "nlr"]
    for unit, standard in zip(resolved.units, standards.values(), strict=True):
        if standard is not None:
            assert mode_params(unit.mode).geometry.standard == standard
    with pytest.raises(ConfigError, match=r"unit\[1\]\.mode: .* use an NTSC mode \(nls, "):
        cfg.resolve_modes(config, lambda p: "ntsc" if p.stem.endswith("1") else None)
    assert {s.default_mode for s in Standard} == {"nhs", "phs"}


def test_config_length_is_bounded(tmp_path: Path) -> None:
    f = config_file(tmp_path, 'length = "1000"\n')
    with pytest.raises(ConfigError, match=r"unit\[0\]\.length: .*1\.\.600 minutes"):
        cfg.load_config(f, environ={})
    f = config_file(tmp_path, 'length = "E-300"\n')
    assert cfg.load_config(f, environ={}).units[0].length == "E-300"


def test_serve_logs_recordings_past_the_end_of_a_truncated_image(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backerd.vcr.base import Recording
    from backerd.vcr.sim import Cassette

    image = tmp_path / "c.img"
    with Cassette.create(image, "ntsc", "T-15") as c:
        c.write_fields(0, [b"\x01" * 1012] * 20)
        c.commit_recording(Recording(0, 10, "nls", user_bytes=None, blocks=None))
        c.commit_recording(Recording(10, 10, "nls", user_bytes=None, blocks=None))
    os.truncate(image, 4096 + 2 * (4 << 20) + 15 * 3072)
    logger = logging.getLogger("backerd")
    monkeypatch.setattr(logger, "propagate", False)  # as serve sets it up
    logger.addHandler(caplog.handler)
    try:
        unit = service.open_sim_unit(cfg.UnitConfig(0, image, mode="nls"))
        trio.run(unit.shutdown)
    finally:
        logger.removeHandler(caplog.handler)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "recording 1 lies past its end" in warnings[0].getMessage()
    assert str(image) in warnings[0].getMessage()


@pytest.mark.parametrize(("option", "transport"), [([], "auto"), (["--transport", "cuse"], "cuse"),
                                                   (["--transport", "fuse"], "fuse")])
def test_transport_option_overrides_the_configuration(
    tmp_path: Path, served: list[cfg.Config], option: list[str], transport: str
) -> None:
    assert main(["serve", "--config", str(config_file(tmp_path)), *option]) == 0
    assert served[0].transport == transport
