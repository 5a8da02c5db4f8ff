"""``backerd status`` text: label, wear and the driver counters in the original wording."""

from __future__ import annotations

from backerd.cli.status import format_status
from backerd.observe.counters import COUNTERS, driver_counters


def test_label_wear_and_counters_are_shown() -> None:
    stats = {"sector_number": 41, "bad_sectors": 2, "bad_sector_runs": 1, "byte_errors": 97,
             "worst_block": 4, "recently": 3, "framing_errors": 1, "underflows": 0,
             "worst_key": 58, "closest_non_key": 12, "smallest_field": 2000,
             "largest_field": 2100, "parity": 10, "key_length": 64}
    unit = {"number": 0, "name": "backer0", "nodes": {}, "position": {"file": 1, "block": 0},
            "labelled": True, "cassette_label": {"text": "MON", "uuid": "u-1"},
            "wear": {"passes": 501, "limit": 500, "worn": True},
            "counters": {"current": driver_counters(state="READING", mode="nhs", stats=stats),
                         "last": driver_counters(state="STOPPED", mode="nhs")}}
    text = format_status({"units": [unit]})
    assert "label 'MON' (u-1), wear 501/500 passes (WORN)" in text
    assert "Sector Number    +000000041" in text
    assert "In Worst Block   4 / 10" in text and "Worst Key        58 / 64" in text
    assert "last recording" not in text  # nothing read before: no empty block
    for _, wording, _ in COUNTERS:
        assert wording.split()[0] in text


def test_unlabelled_cassette_is_reported_as_such() -> None:
    unit = {"number": 0, "labelled": False, "cassette_label": None, "wear": {},
            "counters": {}}
    assert "no label (blank, or written by the original driver)" in format_status(
        {"units": [unit]})


def test_capacity_left_and_nearly_full_warning() -> None:
    unit = {"number": 0, "mode": "nhs", "labelled": False, "cassette_label": None,
            "wear": {}, "counters": {}, "loaded": True, "capacity_left_bytes": 1234567,
            "nearly_full": False}
    text = format_status({"units": [unit]})
    assert "1,234,567 bytes of user data left in mode nhs" in text
    assert "nearly full" not in text
    text = format_status({"units": [{**unit, "nearly_full": True}]})
    assert "WARNING: the cassette is nearly full" in text


def test_no_cassette_says_how_to_insert_one() -> None:
    unit = {"number": 2, "labelled": False, "loaded": False, "cassette_label": None}
    text = format_status({"units": [unit]})
    assert "no cassette (insert one: backerd deck insert --unit 2 IMAGE)" in text
    assert "wear" not in text
