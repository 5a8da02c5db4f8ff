"""EP outer code (spec 7): layout against reedsolo, erasure positions, lost ranges."""

from __future__ import annotations

import numpy as np
import pytest
from reedsolo import RSCodec

from backerd.format import ecc2

C = 716  # nle


def user_bytes(n: int, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def test_group_capacities_match_spec() -> None:
    assert [ecc2.group_capacity(c) for c in (716, 1844, 884, 2284)] == [
        168256, 433336, 207736, 536736,
    ]


@pytest.mark.parametrize("n", [0, 1, 5000, 168256])
def test_layout_matches_spec(n: int) -> None:
    data = user_bytes(n)
    group = ecc2.encode_group(data, C)
    assert group.shape == (255, C)
    area = group[:235].reshape(-1)
    cg = ecc2.group_capacity(C)
    assert area[:n].tobytes() == data
    assert (area[n:cg] == 0x33).all()
    assert int.from_bytes(area[cg:].tobytes(), "little") == n
    # Codeword b: data symbols = byte b of sectors 0..234 (lowest order first),
    # parity p_j = byte b of sector 235 + j. reedsolo takes highest order first.
    rsc = RSCodec(nsym=20, fcr=1, prim=0x11D, generator=2)
    for b in (0, 1, C // 2, C - 1):
        d = group[:235, b].tobytes()
        parity = rsc.encode(d[::-1])[-20:]
        assert group[235:, b].tobytes() == bytes(parity)[::-1]


def test_oversized_group_is_refused() -> None:
    with pytest.raises(ValueError):
        ecc2.encode_group(bytes(ecc2.group_capacity(C) + 1), C)


def test_clean_group_decodes() -> None:
    data = user_bytes(100_000)
    res = ecc2.decode_group(ecc2.encode_group(data, C), np.zeros(255, bool))
    assert res.ok and res.data == data and res.length == 100_000 and res.lost == []
    assert res.corrected == 0


def test_twenty_lost_sectors_anywhere_are_recovered() -> None:
    data = user_bytes(150_000, 2)
    group = ecc2.encode_group(data, C)
    rng = np.random.default_rng(3)
    for lost_idx in (np.arange(20), np.arange(235, 255), np.arange(225, 245),
                     rng.choice(255, 20, replace=False)):
        lost = np.zeros(255, bool)
        lost[lost_idx] = True
        damaged = group.copy()
        damaged[lost] = rng.integers(0, 256, (20, C), dtype=np.uint8)
        res = ecc2.decode_group(damaged, lost)
        assert res.ok and res.data == data, lost_idx


def test_unflagged_bad_sectors_revealed_by_one_codeword_help_the_others() -> None:
    """15 lost sectors plus 3 sectors the inner code passed but that are wrong.

    Sector 100 is wrong everywhere, sectors 150 and 200 in the first half only. The
    first-half codewords need 15 + 3*2 = 21 > 20 symbols of parity; the second-half
    codewords (15 + 2) are correctable and reveal sector 100, after which the first half
    needs 16 + 2*2 = 20.
    """
    data = user_bytes(160_000, 4)
    group = ecc2.encode_group(data, C)
    lost = np.zeros(255, bool)
    lost[10:25] = True
    damaged = group.copy()
    damaged[lost] ^= 0x77
    damaged[100] ^= 0x01
    damaged[150, : C // 2] ^= 0x02
    damaged[200, : C // 2] ^= 0x04
    res = ecc2.decode_group(damaged, lost)
    assert res.ok and res.data == data
    assert res.failed_codewords == 0


def test_too_many_lost_sectors_report_the_right_ranges() -> None:
    n = 100_000
    data = user_bytes(n, 5)
    group = ecc2.encode_group(data, C)
    lost = np.zeros(255, bool)
    lost_data = [3, 4, 50, 140]  # 140 holds bytes beyond n: not a user range
    lost[lost_data] = True
    lost[235:252] = True  # 21 lost sectors in all
    damaged = group.copy()
    damaged[lost] = 0
    res = ecc2.decode_group(damaged, lost)
    assert not res.ok
    assert res.length == n
    assert res.lost == [(3 * C, 2 * C), (50 * C, C)]
    # Every byte outside the lost ranges is right.
    got = np.frombuffer(res.data, np.uint8).copy()
    want = np.frombuffer(data, np.uint8).copy()
    for off, size in res.lost:
        got[off : off + size] = want[off : off + size]
    assert (got == want).all()


def test_lost_length_field_is_reported() -> None:
    group = ecc2.encode_group(user_bytes(1000), C)
    lost = np.zeros(255, bool)
    lost[234] = True
    lost[:21] = True
    damaged = group.copy()
    damaged[lost] ^= 0x10
    res = ecc2.decode_group(damaged, lost)
    assert not res.ok and res.length == ecc2.group_capacity(C)


def test_lost_flag_on_intact_sectors_changes_nothing() -> None:
    data = user_bytes(120_000, 6)
    group = ecc2.encode_group(data, C)
    lost = np.zeros(255, bool)
    lost[[0, 7, 234, 254]] = True
    res = ecc2.decode_group(group, lost)
    assert res.ok and res.data == data and res.corrected == 0


@pytest.mark.parametrize("n_lost", [1, 8, 19])
def test_erasures_plus_one_unflagged_error_per_codeword(n_lost: int) -> None:
    """Lost sectors solved directly where they explain everything; codewords with an
    extra error (2 parity symbols each) go through the general decoder."""
    data = user_bytes(168_256, 7)
    group = ecc2.encode_group(data, C)
    rng = np.random.default_rng(n_lost)
    lost_idx = rng.choice(255, n_lost, replace=False)
    lost = np.zeros(255, bool)
    lost[lost_idx] = True
    damaged = group.copy()
    damaged[lost] = rng.integers(0, 256, (n_lost, C), dtype=np.uint8)
    if n_lost <= 18:
        # One wrong byte in a sector the inner code passed, in some codewords.
        ok_rows = np.flatnonzero(~lost)
        for b in range(0, C, 5):
            damaged[rng.choice(ok_rows), b] ^= 0x40
    res = ecc2.decode_group(damaged, lost)
    assert res.ok and res.data == data


@pytest.mark.parametrize("where", [[7], [100, 236], [3, 50, 240, 243, 250, 254]])
def test_stale_sectors_nothing_flagged_are_found_and_replaced(where: list[int]) -> None:
    """Sectors from another recording (valid to the inner code, nothing lost): the
    clean-codeword check must notice them, including in the parity sectors that the
    shortened check does not recompute (p_8..p_19 = sectors 243..254)."""
    data = user_bytes(120_000, 4)
    group = ecc2.encode_group(data, C)
    stale = ecc2.encode_group(user_bytes(120_000, 5), C)
    damaged = group.copy()
    damaged[where] = stale[where]
    res = ecc2.decode_group(damaged, np.zeros(255, bool))
    assert res.ok and res.data == data and res.lost == []
    assert res.corrected == int((group[where] != stale[where]).sum())


def test_damage_only_in_unchecked_parity_leaves_the_data_alone() -> None:
    data = user_bytes(90_000, 6)
    group = ecc2.encode_group(data, C)
    damaged = group.copy()
    damaged[243:255] ^= 0x5A
    res = ecc2.decode_group(damaged, np.zeros(255, bool))
    assert res.ok and res.data == data
