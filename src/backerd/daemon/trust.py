"""Refusing to trust what other users could change: the configuration and the cassettes.

Theory of operation. The daemon runs as root. A configuration file another user could
rewrite would let that user point it at any file as a "cassette image" (and have root
write tape fields over it); a cassette directory another user could write would let them
swap an image for a symlink or a forged image between two opens. So before it opens
anything, ``serve`` checks the configuration file and every unit's cassette directory
(and image, where it exists), with every directory above them: each must belong to root
or to the daemon's own user, and be writable by no one else, that is, not by every user
and not by a group other than root's or the daemon's. A directory above (not the one
holding the file) may be writable by every user when its sticky bit is set, as /tmp is:
there, others cannot rename or remove what they do not own.

``judge`` is the rule over stat values (pure); ``check_path`` stats the chain of a path.
The first problem found is one ``UnsafePermissions`` line naming the path and the fix.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from backerd.errors import UnsafePermissions


@dataclass(frozen=True)
class Entry:
    path: str
    mode: int  # st_mode
    uid: int
    gid: int


def judge(chain: Sequence[Entry], trusted_uids: Iterable[int], trusted_gids: Iterable[int],
          *, final: int = 1) -> str | None:
    """Why the chain (from / down to the file) cannot be trusted, or None. The last
    ``final`` entries are the file and the directory holding it: no sticky excuse there."""
    uids, gids = set(trusted_uids), set(trusted_gids)
    for index, entry in enumerate(chain):
        is_final = index >= len(chain) - final
        if entry.uid not in uids:
            return (f"{entry.path} belongs to uid {entry.uid}, not root: another user could "
                    f"change it (chown root {entry.path})")
        if entry.mode & stat.S_IWOTH and (
                is_final or not (stat.S_ISDIR(entry.mode) and entry.mode & stat.S_ISVTX)):
            return f"{entry.path} is writable by every user (chmod o-w {entry.path})"
        if entry.mode & stat.S_IWGRP and entry.gid not in gids:
            return (f"{entry.path} is writable by group {entry.gid} (chmod g-w {entry.path}, "
                    "or give it root's group)")
    return None


def _chain(path: Path) -> list[Entry]:
    """Every existing entry from / down to ``path`` (resolved; missing tail skipped)."""
    resolved = path.resolve()
    out = []
    for part in [*reversed(resolved.parents), resolved]:
        try:
            st = os.stat(part)
        except FileNotFoundError:
            break
        out.append(Entry(str(part), st.st_mode, st.st_uid, st.st_gid))
    return out


def check_path(path: Path, what: str, *, final: int = 1) -> None:
    """Raise UnsafePermissions when another user could change ``path``."""
    chain = _chain(path)
    problem = judge(chain, {0, os.geteuid()}, {0, os.getegid()},
                    final=final if chain and chain[-1].path == str(path.resolve()) else 1)
    if problem is not None:
        raise UnsafePermissions(f"refusing to use {what} {path}: {problem}")


def check_config(config_file: Path | None, cassettes: Iterable[Path]) -> None:
    """The configuration file and each cassette's directory and image, or a refusal."""
    if config_file is not None:
        check_path(config_file, "the configuration", final=2)
    for image in cassettes:
        if image.exists():
            check_path(image, "the cassette", final=2)
        else:  # to be created there
            check_path(image.parent, "the cassette directory", final=1)
