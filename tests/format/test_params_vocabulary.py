"""The typed mode vocabulary: standards, formats, parsing errors, and the one PAL/NTSC rule."""

from __future__ import annotations

import json

import pytest

from backerd.errors import UsageError
from backerd.format.params import (
    FORMAT_CHOICES,
    FORMATTED_MODES,
    MODES,
    Format,
    Standard,
    check_standard,
    mode,
    parse_format_choice,
    standard_mismatch,
)

# Written out from the mode table of spec section 2 (first letter n = NTSC, p = PAL).
NTSC_MODES = ("nls", "nhs", "nle", "nhe")
PAL_MODES = ("pls", "phs", "ple", "phe")


@pytest.mark.parametrize("text", ["ntsc", "NTSC", " Pal ", "pal"])
def test_standard_parse_accepts_any_case(text: str) -> None:
    assert Standard.parse(text) == text.strip().lower()


@pytest.mark.parametrize("text", ["secam", "", "p"])
def test_standard_parse_rejects_unknown(text: str) -> None:
    with pytest.raises(UsageError, match="unknown video standard .*use ntsc or pal"):
        Standard.parse(text)


def test_standard_modes_and_defaults() -> None:
    assert Standard.NTSC.modes == NTSC_MODES
    assert Standard.PAL.modes == PAL_MODES
    assert Standard.NTSC.default_mode == "nhs" and Standard.PAL.default_mode == "phs"
    for std in Standard:
        assert mode(std.default_mode).geometry.standard is std


@pytest.mark.parametrize("name", MODES)
def test_mode_standard_follows_its_first_letter(name: str) -> None:
    expected = Standard.PAL if name[0] == "p" else Standard.NTSC
    assert mode(name).geometry.standard is expected


def test_vocabulary_is_plain_strings_outside() -> None:
    """Cassette images and catalogs store the plain strings: the enums must equal them
    and serialise to them."""
    assert Format.V3102 == "3.102" and Standard.PAL == "pal"
    assert json.loads(json.dumps({"fmt": Format.V33, "std": Standard.NTSC})) == {
        "fmt": "3.3", "std": "ntsc"}
    assert mode("nhs", "3.101") is mode("nhs", Format.V3101)
    assert mode("phe").format is Format.V3102


def test_format_parsing() -> None:
    assert [Format.parse(f) for f in ("3.102", "3.101", "3.3")] == list(Format)
    assert [f.is_legacy for f in Format] == [False, True, True]
    assert parse_format_choice("auto") is None
    assert parse_format_choice("3.3") is Format.V33
    assert FORMAT_CHOICES == ("auto", "3.102", "3.101", "3.3")
    with pytest.raises(UsageError, match=r"unknown format '3\.2'; choose one of 3\.102"):
        Format.parse("3.2")
    with pytest.raises(UsageError, match="choose one of auto, 3.102"):
        parse_format_choice("3.2")
    with pytest.raises(UsageError, match="unknown format"):
        mode("nhs", "4.0")


@pytest.mark.parametrize("name", FORMATTED_MODES)
@pytest.mark.parametrize("standard", ["ntsc", "pal"])
def test_check_standard_is_the_one_rule(name: str, standard: str) -> None:
    fits = (name in NTSC_MODES) == (standard == "ntsc")
    assert (standard_mismatch(name, standard) is None) == fits
    if fits:
        check_standard(name, standard)
    else:
        with pytest.raises(UsageError) as info:
            check_standard(name, standard)
        assert str(info.value) == standard_mismatch(name, standard)


def test_mismatch_message_names_the_fix() -> None:
    assert standard_mismatch("nhs", "pal") == (
        "mode nhs is NTSC but the cassette is PAL: use a PAL mode (pls, phs, ple, phe) "
        "or an NTSC cassette")
    assert standard_mismatch("ple", "NTSC") == (
        "mode ple is PAL but the cassette is NTSC: use an NTSC mode (nls, nhs, nle, nhe) "
        "or a PAL cassette")


def test_check_standard_rejects_unknown_inputs() -> None:
    with pytest.raises(UsageError, match="unknown mode"):
        check_standard("xyz", "pal")
    with pytest.raises(UsageError, match="unknown video standard"):
        check_standard("nhs", "secam")
