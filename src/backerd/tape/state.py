"""States of the st state machine and the tables that drive its transitions.

Theory of operation: Linux st keeps, per drive, a direction (``rw``: idle, reading,
writing) and an end-of-file state (``eof``) that records what the last tape access met:
a filemark not yet reported (FM_HIT), a filemark reported by a zero read (FM), the
early-warning zone (EOM_OK / EOM_ERROR) or end of data (EOD_1, EOD_2, EOD). The Drive
consults the tables below instead of scattering the rules through its methods; the
names and the order of the states are st.c's, since GMT_EOD is "eof >= EOM_OK and not
EOT" there.
"""

from __future__ import annotations

import enum

from backerd.tape import mtio


class Rw(enum.Enum):
    IDLE = "idle"
    READING = "reading"
    WRITING = "writing"


class Eof(enum.IntEnum):
    NOEOF = 0
    FM_HIT = 1  # read met a filemark after returning data (fixed mode); not reported yet
    FM = 2  # a zero read reported the filemark; the head is at the start of a file
    EOM_OK = 3  # early warning met while writing: the next write gets ENOSPC
    EOM_ERROR = 4  # data lost at the end of the medium: writes fail with EIO
    EOD_1 = 5  # ENOSPC returned in the zone: the next write may proceed (a trailer)
    EOD_2 = 6  # blank tape right after a filemark was reported: reads return 0 once
    EOD = 7  # end of data reported: further reads fail with EIO


EOM_STATES = frozenset({Eof.EOM_OK, Eof.EOM_ERROR})
EOD_STATES = frozenset({Eof.EOD_1, Eof.EOD_2, Eof.EOD})

# -- reading -----------------------------------------------------------------------------

# A read that finds the read-ahead empty in one of these states does not touch the tape:
# it returns 0 and moves one state on, or fails with EIO at EOD (st_read).
EOD_ON_READ: dict[Eof, Eof | None] = {Eof.EOD_1: Eof.EOD_2, Eof.EOD_2: Eof.EOD, Eof.EOD: None}

# What blank tape (END_OF_DATA) means to a read, by eof state: right after a reported
# filemark it is one more zero read; absent = EIO ("Blank check" with no filemark before).
BLANK_ON_READ: dict[Eof, Eof] = {Eof.FM: Eof.EOD_2}

# Eof state after a read that returned no data (st_read's final switch).
ZERO_READ: dict[Eof, Eof] = {
    Eof.FM_HIT: Eof.FM,  # the filemark is reported now; fileno += 1
    Eof.EOD_1: Eof.EOD_2,
    Eof.EOD_2: Eof.EOD,
}
# Zero reads that move the st file counter to the next file.
ZERO_READ_NEXT_FILE = frozenset({Eof.FM_HIT, Eof.EOD_1})

# Eof state after a read that returned data.
DATA_READ: dict[Eof, Eof] = {Eof.FM: Eof.NOEOF}

# -- writing in the early-warning zone (st.rst "EOM behaviour when writing") -------------

# eof state -> (errno the write fails with, eof state afterwards). After the write that
# met early warning (EOM_OK) one write is refused with ENOSPC and the next one allowed
# (EOD_1); a successful write in the zone returns to EOM_OK, so they alternate.
EOM_WRITE: dict[Eof, tuple[str, Eof]] = {
    Eof.EOM_OK: ("ENOSPC", Eof.EOD_1),
    Eof.EOM_ERROR: ("EIO", Eof.EOM_ERROR),
}

# -- MTIOCTOP -----------------------------------------------------------------------------

# Ops that, after a write, first write the pending filemark (st_ioctl). MTUNLOAD is
# added: it is MTOFFL under another name in st_int_ioctl, and leaving the last
# recording open on an unloaded cassette helps nobody.
WEOF_BEFORE = frozenset({mtio.MTREW, mtio.MTOFFL, mtio.MTUNLOAD, mtio.MTSEEK, mtio.MTBSF,
                         mtio.MTBSFM})
# ... and of those, the ones whose count grows by the filemark just written.
WEOF_BEFORE_COUNTS = frozenset({mtio.MTBSF, mtio.MTBSFM})

# Ops after which the read-ahead is simply dropped (the head moves away anyway); every
# other op first backs the tape over read-ahead data so the position is exact.
SEEK_NEXT = frozenset({mtio.MTREW, mtio.MTOFFL, mtio.MTUNLOAD, mtio.MTRETEN, mtio.MTEOM,
                       mtio.MTLOCK, mtio.MTLOAD, mtio.MTFSF, mtio.MTFSFM, mtio.MTBSF,
                       mtio.MTBSFM, mtio.MTCOMPRESSION})

# Ops that leave the direction alone (so a close after them still writes the filemark).
KEEPS_RW = frozenset({mtio.MTNOP, mtio.MTSETBLK, mtio.MTSETDENSITY, mtio.MTWSM,
                      mtio.MTSETDRVBUFFER, mtio.MTSETPART})

# Ops that need no cassette.
NO_TAPE_OK = frozenset({mtio.MTLOAD, mtio.MTLOCK, mtio.MTUNLOCK})

# Ops that make a lost position known again (st "position_lost_in_reset").
RESTORES_POSITION = frozenset({mtio.MTREW, mtio.MTOFFL, mtio.MTUNLOAD, mtio.MTLOAD,
                               mtio.MTRETEN, mtio.MTERASE, mtio.MTSEEK, mtio.MTEOM})

# Ops st itself does not implement (st_int_ioctl default, or not in the switch).
NOT_IMPLEMENTED = frozenset({mtio.MTRESET, mtio.MTRAS1, mtio.MTRAS2, mtio.MTRAS3,
                             mtio.MTTELL})

# Writing ops refused with EACCES on a protected cassette or a read-only descriptor.
WRITING_OPS = frozenset({mtio.MTWEOF, mtio.MTWEOFI, mtio.MTWSM, mtio.MTERASE})

# Ops without a partition or setmark to act on: the errno a drive without them gives.
UNSUPPORTED_ERRNO = {
    mtio.MTSETPART: "EINVAL",
    mtio.MTMKPART: "EINVAL",
    mtio.MTCOMPRESSION: "EIO",
    mtio.MTFSS: "EIO",
    mtio.MTBSS: "EIO",
    mtio.MTWSM: "EIO",
}
