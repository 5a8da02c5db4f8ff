"""Systematic shortened Reed-Solomon codes over GF(256), batched over many codewords.

Conventions (spec 6.4): a codeword of RS(n, k) with 2t = n - k parity symbols is the
polynomial c(x) = sum_j p_j x^j + sum_j d_j x^(2t+j). Arrays of codewords are laid out
in coefficient order: column i holds the coefficient of x^i, so columns [0, 2t) are the
parity p_0..p_{2t-1} and columns [2t, n) the data d_0..d_{k-1}. Erasure positions are
column indices in this layout.

Encoding and syndromes are GF(2)-linear maps of the symbols, so both are computed as an
XOR over positions of precomputed per-(position, value) words (packed into uint64).
Decoding computes syndromes for every row; only rows with nonzero syndromes go further.
Runs of rows sharing an erasure pattern (EP lost sectors) are solved by one per-pattern
linear map; everything else by errors-and-erasures Berlekamp-Massey (Blahut's form, seeded
with the erasure locator), Chien search and Forney, vectorised over the rows. Every
correction is verified (locator degree = L within capacity, that many distinct roots
inside the shortened length, zero syndromes afterwards) or the row is reported failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from backerd.format.gf import EXP, INV, MUL, generator_poly
from backerd.format.gf_linear import LinearMap

_INV_INTP = INV.astype(np.intp)

_MULF = MUL.reshape(-1)  # _MULF[a << 8 | b] = a*b
_MULF_INTP = _MULF.astype(np.intp)  # same, for the all-intp Berlekamp-Massey loop

# Symbols of dirty rows decoded together: bounds the (rows x n) Chien temporaries while
# keeping numpy's per-call overhead small.
_DECODE_CELLS = 1 << 20


def _mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise GF(256) product of broadcastable uint8 arrays via the flat 64 KiB table."""
    idx = np.empty(np.broadcast_shapes(a.shape, b.shape), dtype=np.intp)
    np.left_shift(a, 8, out=idx, dtype=np.intp)
    np.bitwise_or(idx, b, out=idx, casting="unsafe")
    return np.take(_MULF, idx, mode="clip")


def _row_starts(sorted_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a sorted index array and where each run starts."""
    starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    return sorted_rows[starts], starts


# Rows sharing one erasure pattern before the per-pattern linear solver pays off, and
# how many such solvers a code keeps (each is about 2t * 256 * 2t bytes).
_SHARED_MIN_ROWS = 16
_SOLVER_CACHE = 64


@dataclass(frozen=True)
class RSDecodeResult:
    """Outcome of a batch decode; failed rows are returned exactly as received."""

    corrected: np.ndarray  # (N, n) uint8
    ok: np.ndarray  # (N,) bool
    n_corrected: np.ndarray  # (N,) int64, symbols changed
    changed: np.ndarray  # (N, n) bool


@dataclass(frozen=True)
class RSFixes:
    """Outcome of a decode from syndromes: the error pattern as (row, column, value)
    triples (nonzero values only, rows sorted), for the rows that decoded."""

    ok: np.ndarray  # (N,) bool
    rows: np.ndarray  # (F,) intp
    cols: np.ndarray  # (F,) intp, coefficient order (parity first)
    values: np.ndarray  # (F,) uint8, XOR these into the received symbols

    def per_row(self, count: int) -> np.ndarray:
        """Symbols changed in each of ``count`` rows."""
        return np.bincount(self.rows, minlength=count).astype(np.int64)


def reserve_spare(fixes: RSFixes, erasures: np.ndarray, nsym: int, spare: int) -> RSFixes:
    """`fixes` with the rows that spent more than nsym - spare parity symbols (two per
    error, one per erasure) failed and their triples dropped.

    A decode led by guessed erasures (dropout hints, windows, slip candidates) that uses
    every parity symbol is no check at all: e = 2t erasures always "decode". Keeping
    `spare` syndromes unused makes a wrong guess fail instead of miscorrecting.
    """
    erasures = np.asarray(erasures, dtype=bool)
    rows = erasures.shape[0]
    errs = ~erasures[fixes.rows, fixes.cols]
    spent = 2 * np.bincount(fixes.rows[errs], minlength=rows) + erasures.sum(axis=1)
    over = fixes.ok & (spent > nsym - spare)
    if not over.any():
        return fixes
    keep = ~over[fixes.rows]
    return RSFixes(fixes.ok & ~over, fixes.rows[keep], fixes.cols[keep], fixes.values[keep])


def _poly_degree(poly: np.ndarray) -> np.ndarray:
    """Degree of each row polynomial (coefficients low to high); -1 for zero."""
    nz = poly != 0
    width = poly.shape[1]
    last = width - 1 - np.argmax(nz[:, ::-1], axis=1)
    return np.where(nz.any(axis=1), last, -1)


class RSCode:
    """RS(n, k) with first consecutive root alpha^1; batch encode/decode over rows."""

    def __init__(self, n: int, k: int) -> None:
        if not (0 < k < n <= 255):
            raise ValueError(f"invalid Reed-Solomon code ({n}, {k})")
        self.n, self.k, self.nsym = n, k, n - k
        self.generator = generator_poly(self.nsym)
        nsym = self.nsym
        # x^(2t+j) mod g(x) for every data position j: the parity of a unit data symbol.
        remainders = np.zeros((k, nsym), dtype=np.uint8)
        low_g = self.generator[:nsym]
        rem = low_g.copy()  # x^(2t) mod g: g is monic, so x^(2t) = g - x^(2t) = low part
        for j in range(k):
            remainders[j] = rem
            top = rem[-1]
            rem = np.concatenate([[0], rem[:-1]]).astype(np.uint8) ^ MUL[top, low_g]
        self._encode_map = LinearMap(remainders)

        # alpha^((i+1) j): the syndrome S_{i+1} contribution of a unit symbol at position j.
        pos = np.arange(n, dtype=np.int64)
        expo = (np.arange(1, nsym + 1, dtype=np.int64)[None, :] * pos[:, None]) % 255
        self._syn_pow = EXP[expo].astype(np.uint8)  # (n, 2t)
        self._syn_map = LinearMap(self._syn_pow)
        # The syndromes of a pattern confined to the parity positions [0, 2t).
        self._parity_syn_map = LinearMap(self._syn_pow[:nsym])
        # alpha^(-j k) for Chien / Forney evaluation at X_j^-1, k = 0..2t.
        expo_inv = (-(pos[None, :] * np.arange(nsym + 1, dtype=np.int64)[:, None])) % 255
        self._inv_pow = EXP[expo_inv].astype(np.uint8)  # (2t+1, n)
        self._alpha_pos = EXP[pos % 255].astype(np.uint8)  # X_j = alpha^j
        self._inv_pow_t = np.ascontiguousarray(self._inv_pow.T)  # (n, 2t+1)
        # Chien tables: _chien[k, v, j] = v * alpha^(-j k), one gathered row per coefficient.
        self._chien = MUL[np.arange(256)[None, :, None], self._inv_pow[:, None, :]]
        # Per-pattern erasure solvers; lru_cache is thread-safe and bounds the memory.
        self._erasure_solver = lru_cache(maxsize=_SOLVER_CACHE)(self._build_erasure_solver)

    # ---------------------------------------------------------------- encoding
    def encode(self, data: np.ndarray) -> np.ndarray:
        """Parity (N, 2t) for data rows (N, k) given as d_0..d_{k-1}."""
        data = np.ascontiguousarray(data, dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != self.k:
            raise ValueError(f"expected (N, {self.k}) data, got {data.shape}")
        return np.ascontiguousarray(self._encode_map.apply_rows(data))

    def codewords(self, data: np.ndarray) -> np.ndarray:
        """Full codewords (N, n) in coefficient order: parity then data."""
        data = np.asarray(data, dtype=np.uint8)
        return np.concatenate([self.encode(data), data], axis=1)

    # ---------------------------------------------------------------- decoding
    def _check_codewords(self, cw: np.ndarray) -> np.ndarray:
        cw = np.ascontiguousarray(cw, dtype=np.uint8)
        if cw.ndim != 2 or cw.shape[1] != self.n:
            raise ValueError(f"expected (N, {self.n}) codewords, got {cw.shape}")
        return cw

    def syndromes(self, cw: np.ndarray) -> np.ndarray:
        """(N, 2t) syndromes S_1..S_2t, S_i = c(alpha^i); all zero iff cw is a codeword."""
        cw = self._check_codewords(cw)
        return np.ascontiguousarray(self._syn_map.apply_rows(cw))

    def parity_syndromes(self, parity_diff: np.ndarray) -> np.ndarray:
        """(N, 2t) syndromes of rows whose data re-encodes to parity that differs from
        the received parity by ``parity_diff`` (N, 2t), parity p_0.. order.

        The re-encoded row is a codeword and differs from the received one only in its
        parity, so S(received) = S(parity difference at positions 0..2t-1): 2t gathers
        per row instead of n.
        """
        diff = np.ascontiguousarray(parity_diff, dtype=np.uint8)
        if diff.ndim != 2 or diff.shape[1] != self.nsym:
            raise ValueError(f"expected (N, {self.nsym}) parity differences, got {diff.shape}")
        return np.ascontiguousarray(self._parity_syn_map.apply_rows(diff))

    def decode(self, cw: np.ndarray, erasures: np.ndarray | None = None) -> RSDecodeResult:
        """Errors-and-erasures decode of every row: 2*errors + erasures <= n - k."""
        cw = self._check_codewords(cw)
        rows = cw.shape[0]
        fixes = self.decode_syndromes(self.syndromes(cw), erasures)
        corrected = cw.copy()
        changed = np.zeros(cw.shape, dtype=bool)
        flat = fixes.rows * self.n + fixes.cols
        corrected.reshape(-1)[flat] ^= fixes.values
        changed.reshape(-1)[flat] = True
        return RSDecodeResult(corrected, fixes.ok, fixes.per_row(rows), changed)

    def decode_syndromes(self, synd: np.ndarray, erasures: np.ndarray | None = None) -> RSFixes:
        """Errors-and-erasures decode of rows given by their syndromes S (N, 2t) and
        erasure masks (N, n); rows with zero syndromes are clean (nothing to fix)."""
        synd = np.ascontiguousarray(synd, dtype=np.uint8)
        if synd.ndim != 2 or synd.shape[1] != self.nsym:
            raise ValueError(f"expected (N, {self.nsym}) syndromes, got {synd.shape}")
        rows = synd.shape[0]
        if erasures is not None:
            erasures = np.asarray(erasures, dtype=bool)
            if erasures.shape != (rows, self.n):
                raise ValueError(
                    f"erasure mask {erasures.shape} does not match {(rows, self.n)}"
                )
        ok = np.ones(rows, dtype=bool)
        dirty = np.flatnonzero(synd.any(axis=1))
        fixes = []
        if dirty.size >= _SHARED_MIN_ROWS and erasures is not None:
            solved, rr, cc, mag = self._decode_shared_erasures(synd, erasures, dirty)
            fixes.append((rr, cc, mag))
            dirty = dirty[~solved]
        if dirty.size:
            er = erasures[dirty] if erasures is not None else None
            good, rr, cc, mag = self._decode_dirty(synd[dirty], er)
            ok[dirty] = good
            keep = good[rr]
            fixes.append((dirty[rr[keep]], cc[keep], mag[keep]))
        if not fixes:
            none = np.zeros(0, np.intp)
            return RSFixes(ok, none, none, np.zeros(0, np.uint8))
        rr, cc, mag = (np.concatenate(x) for x in zip(*fixes, strict=True))
        nonzero = mag != 0  # erased symbols may turn out to be right
        rr, cc, mag = rr[nonzero], cc[nonzero], mag[nonzero]
        if len(fixes) > 1:
            order = np.argsort(rr, kind="stable")
            rr, cc, mag = rr[order], cc[order], mag[order]
        return RSFixes(ok, rr.astype(np.intp), cc.astype(np.intp), mag.astype(np.uint8))

    def _decode_shared_erasures(
        self, synd: np.ndarray, erasures: np.ndarray, dirty: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Erasure-only decoding of runs of consecutive rows that share an erasure pattern
        (an EP lost sector erases the same position in every codeword of its group).

        For a fixed pattern the erased values and the Forney syndromes are GF(256)-linear
        in S, so both come from one table-driven linear map. Rows whose Forney syndromes
        vanish are solved: the corrected row has zero syndromes and differs from the
        received one only at the e <= 2t erasures, so it is the unique answer. The rest
        (errors besides the erasures) go to the general decoder.

        Returns (solved (len(dirty),) bool, rows, cols, values) for the solved rows.
        """
        solved = np.zeros(dirty.size, dtype=bool)
        empty = (solved, np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.uint8))
        if erasures.strides[0] == 0:  # one pattern broadcast over all rows
            run_of = np.zeros(dirty.size, dtype=np.intp)
        else:
            packed = np.packbits(erasures, axis=1)  # compare 8x fewer bytes
            breaks = np.flatnonzero((packed[1:] != packed[:-1]).any(axis=1)) + 1
            run_of = np.searchsorted(breaks, dirty, side="right")
        _, starts = _row_starts(run_of)
        counts = np.diff(np.r_[starts, dirty.size])
        long_runs = counts >= _SHARED_MIN_ROWS
        parts = []
        for start, count in zip(starts[long_runs].tolist(), counts[long_runs].tolist(),
                                strict=True):
            positions = np.flatnonzero(erasures[dirty[start]])
            e = positions.size
            if not 0 < e <= self.nsym:
                continue
            members = dirty[start : start + count]
            out = self._erasure_solver(tuple(positions.tolist())).apply_rows(synd[members])
            done = ~out[:, e:].any(axis=1)
            solved[start : start + count] = done
            members = members[done]
            parts.append(
                (np.repeat(members, e), np.tile(positions, members.size), out[done, :e].ravel())
            )
        if not parts:
            return empty
        rr, cc, mag = (np.concatenate(x) for x in zip(*parts, strict=True))
        return solved, rr, cc, mag

    def _build_erasure_solver(self, positions: tuple[int, ...]) -> LinearMap:
        """Map S (2t) -> (erased values (e), Forney syndromes (2t - e)) for one pattern."""
        nsym = self.nsym
        pos = np.array(positions, dtype=np.intp)
        e = pos.size
        # Gamma(x) = prod (1 + X_j x) and Gamma'(X_j^-1) for each erased position j.
        gam = np.zeros(e + 1, dtype=np.uint8)
        gam[0] = 1
        for s, x in enumerate(self._alpha_pos[pos]):
            gam[1 : s + 2] ^= MUL[x, gam[: s + 1]]
        inv_pow = self._inv_pow_t[pos]  # (e, 2t+1): alpha^(-j k)
        odd = np.arange(1, e + 1, 2)
        dgam = np.bitwise_xor.reduce(MUL[gam[odd][None, :], inv_pow[:, odd - 1]], axis=1)
        # Forney with S = unit vector at S_{i+1}: Omega = x^i Gamma mod x^e (deg < e), so
        # values[i, j] = sum_m Gamma_{m-i} X_j^-m / Gamma'(X_j^-1): a Toeplitz product.
        m_minus_i = np.arange(e)[None, :] - np.arange(nsym)[:, None]
        toeplitz = np.where(m_minus_i >= 0, gam[np.clip(m_minus_i, 0, e)], 0).astype(np.uint8)
        om = np.bitwise_xor.reduce(MUL[toeplitz[:, :, None], inv_pow[:, :e].T[None]], axis=1)
        values = MUL[om, INV[dgam][None, :]]  # (2t, e)
        # Consistency: the Forney syndromes T_i = (Gamma S)_i, e <= i < 2t, all vanish iff
        # S is the syndrome of a pattern on the erased positions, i.e. iff the corrected
        # row has zero syndromes. Column b holds the coefficients of T_(e+b) in S.
        g_index = e + np.arange(nsym - e)[None, :] - np.arange(nsym)[:, None]
        valid = (g_index >= 0) & (g_index <= e)
        left = np.where(valid, gam[np.clip(g_index, 0, e)], 0).astype(np.uint8)
        full = np.concatenate([values, left], axis=1)  # (2t, 2t): S -> (values, T_e..)
        return LinearMap(full)

    def _decode_dirty(
        self, synd: np.ndarray, erasures: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Decode rows with nonzero syndromes S (N, 2t) and erasure masks (N, n).

        Returns (ok (N,), rows, cols, values): the error pattern as (row, column, value)
        triples, meaningful for ok rows only, where the pattern was checked to zero S.
        """
        good = np.empty(synd.shape[0], dtype=bool)
        parts = [(np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.uint8))]
        step = max(256, _DECODE_CELLS // self.n)
        for lo in range(0, synd.shape[0], step):
            hi = min(synd.shape[0], lo + step)
            er = erasures[lo:hi] if erasures is not None else None
            good[lo:hi], rr, cc, mag = self._decode_chunk(synd[lo:hi], er)
            parts.append((rr + lo, cc, mag))
        rr, cc, mag = (np.concatenate(x) for x in zip(*parts, strict=True))
        return good, rr, cc, mag

    def _decode_chunk(
        self, synd: np.ndarray, erasures: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One chunk of _decode_dirty."""
        rows = synd.shape[0]
        nsym = self.nsym
        width = nsym + 1
        good = np.ones(rows, dtype=bool)
        none = (np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.uint8))
        if erasures is not None and not erasures.any():
            erasures = None

        # Erasure locator Gamma(x) = prod (1 + X_j x), coefficient-major (width, rows);
        # missing slots multiply by 1.
        gamma = np.zeros((width, rows), dtype=np.intp)
        gamma[0] = 1
        n_eras = np.zeros(rows, dtype=np.int64)
        if erasures is not None:
            # Erased (row, column) pairs, row-major, of the rows within capacity.
            r_idx, c_idx = np.divmod(np.flatnonzero(erasures), self.n)
            n_eras = np.bincount(r_idx, minlength=rows).astype(np.int64)
            good &= n_eras <= nsym
            if not good.all():
                keep = good[r_idx]
                r_idx, c_idx = r_idx[keep], c_idx[keep]
            erased_rows, erased_cols = r_idx, c_idx
            if r_idx.size:
                _, starts = _row_starts(r_idx)
                counts = np.diff(np.r_[starts, r_idx.size])
                rank = np.arange(r_idx.size) - np.repeat(starts, counts)
                locs = np.zeros((int(rank.max()) + 1, rows), dtype=np.intp)
                locs[rank, r_idx] = self._alpha_pos[c_idx]
                for s in range(locs.shape[0]):
                    gamma[1 : s + 2] ^= np.take(
                        _MULF_INTP, (locs[s] << 8) | gamma[: s + 1], mode="clip"
                    )

        # Berlekamp-Massey on S_1..S_2t seeded with Gamma (Blahut): Psi = Lambda * Gamma,
        # in Massey's unnormalised form: Lambda -= (delta / b) x^m B, with xb = x^m B.
        # A row whose L passes its capacity (2t + e) / 2 fails whatever follows, so every
        # polynomial is kept to cap + 1 coefficients (exact for the rows that can succeed),
        # and at step r only the first r + 1 coefficients can be nonzero. Polynomials are
        # coefficient-major intp arrays: contiguous rows, no casts in the index arithmetic.
        e_max = int(n_eras.max()) if erasures is not None else 0
        cap = min((nsym + e_max) // 2, nsym)
        pw_ = cap + 1
        sx = np.zeros((2 * nsym + 1, rows), dtype=np.intp)  # sx[nsym + m] = S_m << 8
        np.left_shift(synd.T, 8, out=sx[nsym + 1 :], dtype=np.intp)
        lam = gamma[:pw_].copy()
        xb = np.zeros((pw_, rows), dtype=np.intp)
        xb[1:] = lam[:-1]
        binv = np.ones(rows, dtype=np.intp)
        big_l = n_eras.copy()
        idx = np.empty((pw_, rows), dtype=np.intp)
        tmp = np.empty((pw_, rows), dtype=np.intp)
        # Row selections are applied as all-ones/zero masks (x ^= (x ^ y) & mask):
        # several times faster than masked copies.
        active_mask = np.negative(good, dtype=np.intp)
        for r in range(1, nsym + 1):
            if erasures is not None:
                active = good & (r > n_eras)
                if not active.any():
                    continue
                active_mask = np.negative(active, dtype=np.intp)
            w = min(r + 1, pw_)
            window = sx[nsym + r - w + 1 : nsym + r + 1][::-1]  # S_{r-j} << 8, j < w
            np.bitwise_or(window, lam[:w], out=idx[:w])
            delta = np.bitwise_xor.reduce(np.take(_MULF_INTP, idx[:w], mode="clip"), axis=0)
            delta &= active_mask
            grow = (delta != 0) & (2 * big_l <= r + n_eras - 1)
            coef = np.take(_MULF_INTP, (delta << 8) | binv, mode="clip")
            np.left_shift(coef, 8, out=idx[:w])
            np.bitwise_or(idx[:w], xb[:w], out=idx[:w])
            prod = np.take(_MULF_INTP, idx[:w], mode="clip")
            # B <- Lambda before this step, in the rows that grow.
            np.bitwise_xor(xb, lam, out=tmp)
            tmp &= np.negative(grow, dtype=np.intp)
            xb ^= tmp
            lam[:w] ^= prod
            binv = np.where(grow, np.take(_INV_INTP, delta, mode="clip"), binv)
            big_l = np.where(grow, r - big_l + n_eras, big_l)
            if erasures is not None:
                # xb <- x * xb in the active rows only.
                tmp[0] = xb[0]
                np.bitwise_xor(xb[1:], xb[:-1], out=tmp[1:])
                tmp &= active_mask
                xb ^= tmp
            else:
                xb[1:] = xb[:-1].copy()
                xb[0] = 0

        deg = _poly_degree(np.ascontiguousarray(lam.T))
        # Bounded distance: errata degree equals L and 2*errors + erasures <= 2t.
        good &= (deg == big_l) & (2 * big_l - n_eras <= nsym) & (deg >= 1)

        # Roots. If BM found no errors beyond the erasures, Psi = Gamma and the roots are
        # exactly the erased positions; otherwise a Chien search over positions < n.
        root_rows, root_cols = [], []
        if erasures is not None:
            only_eras = good & (big_l == n_eras)
            keep = only_eras[erased_rows]
            root_rows.append(erased_rows[keep])
            root_cols.append(erased_cols[keep])
            search = np.flatnonzero(good & ~only_eras)
        else:
            search = np.flatnonzero(good)
        if search.size:
            top = int(deg[search].max())
            vals = np.take(self._chien[1], lam[1, search], axis=0)
            for k in range(2, top + 1):
                vals ^= np.take(self._chien[k], lam[k, search], axis=0)
            # Psi_0 = 1, so Psi(X^-1) = 0 where the other terms sum to 1
            r_idx, c_idx = np.divmod(np.flatnonzero(vals == 1), self.n)
            found = np.bincount(r_idx, minlength=search.size) == deg[search]
            good[search[~found]] = False
            keep = found[r_idx]
            r_idx, c_idx = r_idx[keep], c_idx[keep]
            root_rows.append(search[r_idx])
            root_cols.append(c_idx)
        if not root_rows:
            return (good, *none)
        rr = np.concatenate(root_rows)
        cc = np.concatenate(root_cols)
        if rr.size == 0:
            return (good, *none)
        order = np.argsort(rr, kind="stable")
        rr, cc = rr[order], cc[order]

        # Errata evaluator Omega(x) = S(x) Psi(x) mod x^2t, S(x) = sum S_{i+1} x^i. For a
        # true errata locator deg Omega < deg Psi, so only those terms are formed (a wrong
        # Omega can only give a wrong pattern, which the final syndrome check rejects).
        uniq, starts = _row_starts(rr)
        which = np.repeat(np.arange(uniq.size), np.diff(np.r_[starts, rr.size]))
        top = int(deg[uniq].max())
        lam_u = lam[:, uniq]  # (cap + 1, rows with roots)
        synd_u = synd[uniq].T.astype(np.intp)  # (2t, rows with roots)
        omega = np.zeros((top, uniq.size), dtype=np.intp)
        for k in range(top):
            omega[k:] ^= np.take(_MULF_INTP, (lam_u[k] << 8) | synd_u[: top - k], mode="clip")
        # Forney (fcr = 1): e_j = Omega(X_j^-1) / Psi'(X_j^-1). Both polynomials are
        # evaluated at every position with the Chien row tables (cheap row copies), then
        # read at the roots. In characteristic 2, x Psi'(x) is the odd part of Psi(x).
        om_all = np.take(self._chien[0], omega[0], axis=0)
        for k in range(1, top):
            om_all ^= np.take(self._chien[k], omega[k], axis=0)
        odd_all = np.take(self._chien[1], lam_u[1], axis=0)
        for k in range(3, top + 1, 2):
            odd_all ^= np.take(self._chien[k], lam_u[k], axis=0)
        om = om_all[which, cc]
        dpsi = _mul(odd_all[which, cc], self._alpha_pos[cc])  # Psi'(X^-1) = X Psi_odd(X^-1)
        good[rr[dpsi == 0]] = False
        mag = _mul(om, INV[dpsi])

        # Verify: syndromes are linear, so S(fixed) = S(received) + S(error pattern);
        # the pattern's syndromes come from the packed per-(position, value) tables.
        pattern = self._syn_map.sum_segments(cc, mag.astype(np.intp), starts)
        wrong = np.zeros(uniq.size, dtype=bool)
        for want, got in zip(self._syn_map.pack(synd[uniq]), pattern, strict=True):
            wrong |= want != got
        good[uniq[wrong]] = False
        return good, rr, cc, mag


@cache
def rs_code(n: int, k: int) -> RSCode:
    return RSCode(n, k)
