"""The monitor's lines from two status polls."""

from __future__ import annotations

from backerd.observe.monitor import plain_line, unit_lines


def unit(written: int, byte_errors: int | None) -> dict:
    return {"number": 0, "mode": "nhs", "position": {"file": 2, "block": 7},
            "counter": "0:01:02", "cassette_label": {"text": "MON", "uuid": "u"},
            "totals": {"write_bytes_total": written, "read_bytes_total": 0},
            "counters": {"current": {"state": "WRITING", "byte_errors": byte_errors,
                                     "parity": 10, "worst_block": 3, "key_length": 64,
                                     "worst_key": 60}},
            "time_left_seconds": 3725, "wear": {"passes": 4, "limit": 500}}


def test_throughput_is_the_change_over_the_interval() -> None:
    line = plain_line(unit(3_000_000, 5), unit(1_000_000, 0), 2.0)
    assert "write_Bps=1000000" in line and "label=MON" in line and "state=WRITING" in line
    assert "time_left=3725" in line


def test_first_poll_has_no_rate_and_terminal_lines_name_everything() -> None:
    text = "\n".join(unit_lines(unit(5, None), None, 0.0))
    assert "write      0.0 kB/s" in text
    assert "worst block 3/10" in text and "worst key 60/64" in text
    assert "1:02:05 of tape left" in text and "wear 4/500" in text
    assert "byte errors -" in text
