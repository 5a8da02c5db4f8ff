"""install.plan: which files are written, kept or removed, decided from hashes alone."""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backerd.install import plan
from backerd.install.plan import Step


def h(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


T = PurePosixPath("/etc/x.service")
NEW, OLD, EDIT = b"new\n", b"old\n", b"edited\n"

# (on disk, manifest's hash for T) -> expected step: the rules written out by hand
INSTALL_TABLE = [
    (None, None, Step.INSTALL),
    (None, OLD, Step.INSTALL),  # ours but deleted: put back
    (NEW, None, Step.UNCHANGED),  # someone installed the same content: now counted ours
    (NEW, OLD, Step.UNCHANGED),
    (OLD, OLD, Step.UPDATE),  # ours, unedited, shipped version changed
    (EDIT, OLD, Step.KEEP_EDITED),
    (EDIT, None, Step.KEEP_FOREIGN),
]


@pytest.mark.parametrize(("disk", "ours", "step"), INSTALL_TABLE)
def test_install_rules(disk: bytes | None, ours: bytes | None, step: Step) -> None:
    manifest = {} if ours is None else {str(T): h(ours)}
    result = plan.plan_install({T: NEW}, {T: None if disk is None else h(disk)}, manifest)
    assert [a.step for a in result.actions] == [step]
    written = result.actions[0].content
    assert written == (NEW if step in plan.WRITES else None)
    expected_manifest = {
        Step.INSTALL: h(NEW), Step.UNCHANGED: h(NEW), Step.UPDATE: h(NEW),
        Step.KEEP_EDITED: h(OLD), Step.KEEP_FOREIGN: None}[step]
    assert result.manifest.get(str(T)) == expected_manifest


@pytest.mark.parametrize(("disk", "step"), [
    (None, Step.ALREADY_GONE), (OLD, Step.REMOVE), (EDIT, Step.KEEP_EDITED)])
def test_uninstall_rules(disk: bytes | None, step: Step) -> None:
    result = plan.plan_uninstall({T: None if disk is None else h(disk)}, {str(T): h(OLD)})
    assert [a.step for a in result.actions] == [step]
    assert result.manifest == {}


def test_a_file_no_longer_shipped_is_removed_unless_edited() -> None:
    gone, edited = PurePosixPath("/etc/a.conf"), PurePosixPath("/etc/b.conf")
    manifest = {str(gone): h(OLD), str(edited): h(OLD)}
    result = plan.plan_install({}, {gone: h(OLD), edited: h(EDIT)}, manifest)
    assert {a.target: a.step for a in result.actions} == {
        gone: Step.REMOVE, edited: Step.KEEP_EDITED}
    assert result.manifest == {str(edited): h(OLD)}
    assert result.warnings == [f"{edited} (edited since it was installed: left alone)"]


# -- properties over a whole disk, against a dict standing for it ----------------------

TARGETS = [PurePosixPath(f"/etc/f{i}") for i in range(4)]
contents = st.sampled_from([b"a", b"b", b"c"])
disks = st.fixed_dictionaries({t: st.none() | contents for t in TARGETS})


def carry_out(disk: dict[PurePosixPath, bytes | None], result: plan.Plan) -> None:
    for action in result.actions:
        if action.step in plan.WRITES:
            disk[action.target] = action.content
        elif action.step is Step.REMOVE:
            disk[action.target] = None


def hashes(disk: dict[PurePosixPath, bytes | None]) -> dict[PurePosixPath, str | None]:
    return {t: None if c is None else h(c) for t, c in disk.items()}


@given(disks, st.dictionaries(st.sampled_from(TARGETS), contents),
       st.dictionaries(st.sampled_from(TARGETS), contents))
def test_never_touches_a_file_that_is_not_ours_unedited(
        before: dict, installed: dict, wanted: dict) -> None:
    manifest = {str(t): h(c) for t, c in installed.items()}
    disk = dict(before)
    result = plan.plan_install(wanted, hashes(disk), manifest)
    carry_out(disk, result)
    for t in TARGETS:
        ours_unedited = before[t] is not None and manifest.get(str(t)) == h(before[t])
        if before[t] is not None and not ours_unedited and before[t] != wanted.get(t):
            assert disk[t] == before[t], f"{t} was changed though not ours"
    # every file now recorded as ours holds exactly what the manifest says, or was edited
    for name, digest in result.manifest.items():
        now = disk[PurePosixPath(name)]
        assert now is None or h(now) == digest or manifest.get(name) == digest


@given(disks, st.dictionaries(st.sampled_from(TARGETS), contents))
def test_uninstall_after_install_restores_what_was_not_ours(before: dict, wanted: dict) -> None:
    disk = dict(before)
    installed = plan.plan_install(wanted, hashes(disk), {})
    carry_out(disk, installed)
    removed = plan.plan_uninstall(hashes(disk), installed.manifest)
    carry_out(disk, removed)
    for t in TARGETS:
        if before[t] is None:
            assert disk[t] is None, f"{t} was installed and not removed"
        elif before[t] != wanted.get(t):
            assert disk[t] == before[t]
        # a file that already held exactly what we ship is ours now and goes away too


def test_render_points_every_backerd_exec_start_at_the_path() -> None:
    text = ("ExecStart=/usr/local/bin/backerd serve\nExecStart=\n"
            "ExecStart=-/usr/local/bin/backerd serve --transport cuse\n"
            "ExecStart=/bin/sh -c 'echo backerd' sh %i\n"
            "ExecStartPre=+/usr/sbin/modprobe cuse\n# ExecStart=/usr/local/bin/backerd\n")
    assert plan.render(text, "/opt/b/bin/backerd").splitlines() == [
        "ExecStart=/opt/b/bin/backerd serve", "ExecStart=",
        "ExecStart=-/opt/b/bin/backerd serve --transport cuse",
        "ExecStart=/bin/sh -c 'echo backerd' sh %i",
        "ExecStartPre=+/usr/sbin/modprobe cuse", "# ExecStart=/usr/local/bin/backerd"]


@pytest.mark.parametrize(("path", "hidden"), [
    ("/home/ann/.venv/bin/backerd", True), ("/root/venv/bin/backerd", True),
    ("/run/user/1000/x/backerd", True), ("/homes/backerd", False),
    ("/opt/backerd/bin/backerd", False), ("/usr/local/bin/backerd", False)])
def test_home_paths_are_flagged(path: str, hidden: bool) -> None:
    assert (plan.hidden_by_protect_home("/usr/bin/backerd", path) == path) is hidden


@pytest.mark.parametrize("path", ["bin/backerd", "/opt/my env/backerd", "/opt/50%/backerd",
                                  "/opt/$x/backerd"])
def test_unusable_exec_paths_are_refused(path: str) -> None:
    assert plan.exec_path_problem(path) is not None
    assert plan.exec_path_problem("/opt/backerd/bin/backerd") is None


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"files": []}', '{"files": {"a": "b"}}',
                                  '{"files": {"/etc/x": "zz"}}', "\xff"])
def test_a_broken_manifest_is_not_read_as_one(text: str) -> None:
    assert plan.parse_manifest(text) is None


def test_manifest_round_trip() -> None:
    files = {"/etc/x": h(b"x"), "/etc/y": h(b"y")}
    assert plan.parse_manifest(plan.manifest_text(files, "/usr/bin/backerd")) == files


def test_the_cuse_drop_in_applies_only_to_cuse() -> None:
    sources = {f.source: "ExecStart=/usr/local/bin/backerd serve\n" for f in plan.FILES}
    cuse = plan.wanted_files("cuse", sources, "/b/backerd")
    fuse = plan.wanted_files("fuse", sources, "/b/backerd")
    drop_ins = [t for t in cuse if t.parent.name == "backerd.service.d"]
    assert len(drop_ins) == 1 and drop_ins[0] not in fuse
    assert set(fuse) | set(drop_ins) == set(cuse)
    assert all(c == b"ExecStart=/b/backerd serve\n" for c in cuse.values())
