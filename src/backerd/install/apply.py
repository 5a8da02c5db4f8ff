"""The edge of ``backerd install-system``: read the target root, write the plan, verify.

Theory of operation. ``shipped_sources`` reads the package data; ``disk_hashes`` hashes
what is on disk under the root for every path the plan may touch; ``plan.plan_install``
or ``plan.plan_uninstall`` decides; ``carry_out`` writes each file atomically (a
temporary file in the same directory, then rename), removes what the plan removes (and
the drop-in directory once empty), and writes the manifest last, so an interrupted
install is repeated safely. ``verify`` runs ``systemd-analyze verify`` on installed
unit files and reports each complaint about them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterable
from importlib import resources
from pathlib import Path, PurePosixPath

from backerd.errors import InstallError
from backerd.install.plan import FILES, MANIFEST, WRITES, Plan, Step, manifest_text, parse_manifest

CUSE_MODULE_HINTS = (Path("/dev/cuse"), Path("/sys/module/cuse"))


def shipped_sources() -> dict[str, str]:
    """Source name -> text of every file shipped in the package."""
    base = resources.files("backerd.install").joinpath("files")
    return {f.source: base.joinpath(f.source).read_text() for f in FILES}


def under(root: Path, target: PurePosixPath) -> Path:
    return root / target.relative_to("/")


def read_manifest(root: Path) -> dict[str, str]:
    path = under(root, MANIFEST)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InstallError(f"cannot read {path}: {exc.strerror}") from None
    manifest = parse_manifest(text)
    if manifest is None:
        raise InstallError(f"{path} is not a backerd install manifest; move it away to go on")
    return manifest


def disk_hashes(root: Path, targets: Iterable[PurePosixPath]) -> dict[PurePosixPath, str | None]:
    out: dict[PurePosixPath, str | None] = {}
    for target in targets:
        path = under(root, target)
        try:
            out[target] = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            out[target] = None
        except OSError as exc:
            raise InstallError(f"cannot read {path}: {exc.strerror}") from None
    return out


def _write_atomic(path: Path, content: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.backerd-new")
    try:
        with open(temporary, "wb") as f:
            f.write(content)
            os.fchmod(f.fileno(), mode)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise InstallError(f"cannot write {path}: {exc.strerror}") from None


def carry_out(root: Path, plan: Plan, backerd: str) -> None:
    for action in plan.actions:
        path = under(root, action.target)
        if action.step in WRITES:
            assert action.content is not None
            _write_atomic(path, action.content)
        elif action.step is Step.REMOVE:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise InstallError(f"cannot remove {path}: {exc.strerror}") from None
            if path.parent.name.endswith(".d"):
                with contextlib.suppress(OSError):  # only when empty
                    path.parent.rmdir()
    manifest = under(root, MANIFEST)
    if plan.manifest:
        _write_atomic(manifest, manifest_text(plan.manifest, backerd).encode())
    else:
        with contextlib.suppress(FileNotFoundError):
            manifest.unlink()


def cuse_available() -> bool:
    """Whether this machine serves CUSE: /dev/cuse, the module loaded, or loadable."""
    if any(p.exists() for p in CUSE_MODULE_HINTS):
        return True
    modinfo = shutil.which("modinfo")
    if modinfo is None:
        return False
    result = subprocess.run([modinfo, "cuse"], capture_output=True, check=False)
    return result.returncode == 0


def verify(unit_files: list[Path], analyze: str = "systemd-analyze") -> list[str]:
    """``systemd-analyze verify`` of ``unit_files``: each complaint (empty: none)."""
    if not unit_files:
        return []
    result = subprocess.run([analyze, "verify", *map(str, unit_files)], capture_output=True,
                            text=True, check=False)
    # lines about our files only (a drop-in's path holds its unit's name; a template is
    # checked as the instance "i"), not about other units of the system
    names = {p.name for p in unit_files} | {p.name.replace("@.", "@i.") for p in unit_files}
    complaints = [line for line in result.stderr.splitlines()
                  if any(name in line for name in names)]
    if result.returncode != 0 and not complaints:
        complaints = result.stderr.strip().splitlines()[-1:] or [
            f"systemd-analyze verify exited with {result.returncode}"]
    return complaints


def unit_files(root: Path, plan: Plan) -> list[Path]:
    """The unit files (not drop-ins, rules or module lists) the plan leaves installed."""
    kept = (Step.INSTALL, Step.UPDATE, Step.UNCHANGED, Step.KEEP_EDITED)
    return [under(root, a.target) for a in plan.actions
            if a.step in kept and a.target.parent.name == "system"
            and a.target.suffix in (".service", ".timer")]
