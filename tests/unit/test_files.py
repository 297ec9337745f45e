"""Versioning raw files and folders: snapshot, status, checkout, the stat cache, and the
store's hardlink adoption (mlcycle.datasets.files, FsspecArtifactStore.adopt_file)."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
from blake3 import blake3

from mlcycle.datasets import files
from mlcycle.datasets.files import (
    FileEntry,
    FileManifest,
    StatCache,
    checkout_files,
    snapshot_files,
    status_files,
)
from mlcycle.errors import InvalidInputError, InvalidStateError, StoreError
from mlcycle.store.artifacts.cas import FsspecArtifactStore

LATER = 60 * 10**9  # a clock this far ahead treats every file just written as settled


def _later_clock() -> int:
    return time.time_ns() + LATER


def _write(path: Path, data: bytes, *, executable: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if executable:
        path.chmod(0o755)
    return path


def _tree(root: Path) -> Path:
    _write(root / "a.csv", b"x,y\n1,2\n")
    _write(root / "img" / "cat.png", b"\x89PNG cat")
    _write(root / "img" / "deep" / "dog.png", b"\x89PNG dog")
    _write(root / "run.sh", b"#!/bin/sh\necho hi\n", executable=True)
    return root


def _objects(store: FsspecArtifactStore) -> list[Path]:
    return [p for p in Path(store.root, "objects").rglob("*") if p.is_file()]


def _obj(store: FsspecArtifactStore, digest: str) -> Path:
    return Path(store.root, "objects", digest[:2], digest[2:])


def _counting_hasher(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = files._hash_file

    def counting(path: str) -> tuple[str, os.stat_result]:
        calls.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(files, "_hash_file", counting)
    return calls


@pytest.fixture
def store(tmp_path: Path) -> FsspecArtifactStore:
    return FsspecArtifactStore(str(tmp_path / "store"))


@pytest.fixture
def settled_cache(tmp_path: Path) -> StatCache:
    """A cache whose clock runs ahead, so files written by the test are not racy."""
    return StatCache(tmp_path / "cache", clock=_later_clock)


# --------------------------------------------------------------------------- snapshot


def test_snapshot_of_a_file_names_it_by_basename_and_stores_it(
    tmp_path: Path, store: FsspecArtifactStore
) -> None:
    data = os.urandom(5000)
    path = _write(tmp_path / "data" / "big.bin", data)
    manifest = snapshot_files(path, store)
    assert manifest.entries == (FileEntry("big.bin", 5000, blake3(data).hexdigest(), False),)
    assert manifest.count == 1 and manifest.total_bytes == 5000
    assert store.get_bytes(manifest.entries[0].digest) == data
    # The manifest is an object too, named by its digest.
    assert FileManifest.from_bytes(store.get_bytes(manifest.digest)) == manifest


def test_snapshot_of_a_folder_records_relative_paths_sizes_and_the_executable_bit(
    tmp_path: Path, store: FsspecArtifactStore
) -> None:
    root = _tree(tmp_path / "data")
    _write(root / ".mlcycle" / "cache" / "stat.sqlite", b"not versioned")
    (tmp_path / "elsewhere").mkdir()
    _write(tmp_path / "elsewhere" / "x.bin", b"outside")
    (root / "linked_dir").symlink_to(tmp_path / "elsewhere")
    (root / "linked.bin").symlink_to(tmp_path / "elsewhere" / "x.bin")

    manifest = snapshot_files(root, store)

    by_path = {e.path: e for e in manifest.entries}
    assert list(by_path) == [
        "a.csv",
        "img/cat.png",
        "img/deep/dog.png",
        "linked.bin",
        "run.sh",
    ]  # sorted; .mlcycle and the symlinked folder skipped
    assert by_path["img/deep/dog.png"].size == len(b"\x89PNG dog")
    assert by_path["run.sh"].executable and not by_path["a.csv"].executable
    assert manifest.total_bytes == sum(e.size for e in manifest.entries)
    # A file reached through a symlink is copied: its target must not become read-only.
    assert os.stat(tmp_path / "elsewhere" / "x.bin").st_mode & 0o200
    assert store.get_bytes(by_path["linked.bin"].digest) == b"outside"


def test_identical_content_gives_the_identical_manifest_digest(
    tmp_path: Path, store: FsspecArtifactStore
) -> None:
    one = _tree(tmp_path / "one")
    two = tmp_path / "two"
    # Other creation order (so another directory order), other mtimes.
    _write(two / "run.sh", b"#!/bin/sh\necho hi\n", executable=True)
    _write(two / "img" / "deep" / "dog.png", b"\x89PNG dog")
    _write(two / "img" / "cat.png", b"\x89PNG cat")
    _write(two / "a.csv", b"x,y\n1,2\n")
    for path in two.rglob("*"):
        os.utime(path, ns=(10**18, 10**18))

    first = snapshot_files(one, store, link="copy")
    second = snapshot_files(two, store, link="copy")
    assert first.digest == second.digest
    assert first.to_bytes() == second.to_bytes()
    assert FileManifest(tuple(reversed(first.entries))).digest == first.digest

    _write(two / "a.csv", b"x,y\n1,3\n")
    assert snapshot_files(two, store, link="copy").digest != first.digest


def test_the_same_bytes_are_stored_once(tmp_path: Path, store: FsspecArtifactStore) -> None:
    root = tmp_path / "data"
    for i in range(5):
        _write(root / f"copy{i}.txt", b"same bytes")
    _write(root / "other.txt", b"other bytes")
    manifest = snapshot_files(root, store)
    assert len({e.digest for e in manifest.entries}) == 2
    assert len(_objects(store)) == 3  # two files + the manifest
    snapshot_files(root, store)
    assert len(_objects(store)) == 3


def test_snapshot_rejects_a_missing_path_an_empty_folder_and_a_bad_link_mode(
    tmp_path: Path, store: FsspecArtifactStore
) -> None:
    with pytest.raises(InvalidInputError, match="no such file or folder") as missing:
        snapshot_files(tmp_path / "nope", store)
    assert missing.value.details["path"] == str(tmp_path / "nope")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(InvalidInputError, match="holds no files"):
        snapshot_files(tmp_path / "empty", store)
    _write(tmp_path / "f.txt", b"x")
    with pytest.raises(InvalidInputError, match="'link' parameter"):
        snapshot_files(tmp_path / "f.txt", store, link="reflink")
    with pytest.raises(InvalidInputError, match="no such file or folder"):
        status_files(tmp_path / "nope", FileManifest(()))


def test_a_dangling_symlink_is_named_in_the_error(
    tmp_path: Path, store: FsspecArtifactStore
) -> None:
    root = tmp_path / "data"
    _write(root / "ok.txt", b"x")
    (root / "broken").symlink_to(tmp_path / "gone")
    with pytest.raises(InvalidInputError, match="broken"):
        snapshot_files(root, store)


def test_progress_ends_with_every_file_done(tmp_path: Path, store: FsspecArtifactStore) -> None:
    root = _tree(tmp_path / "data")
    seen: list[tuple[int, int]] = []
    snapshot_files(root, store, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (4, 4)


# --------------------------------------------------------------------------- linking


def test_files_are_hardlinked_into_the_store_and_made_read_only(
    tmp_path: Path, store: FsspecArtifactStore
) -> None:
    root = _tree(tmp_path / "data")
    manifest = snapshot_files(root, store)
    for entry in manifest.entries:
        user, obj = os.stat(root / entry.path), os.stat(_obj(store, entry.digest))
        assert user.st_ino == obj.st_ino and user.st_nlink == 2
        assert stat.S_IMODE(user.st_mode) & 0o222 == 0  # protected like DVC's protected mode
    assert stat.S_IMODE(os.stat(root / "run.sh").st_mode) == 0o555  # x kept, w removed


def test_link_copy_gives_an_independent_read_only_object(
    tmp_path: Path, store: FsspecArtifactStore
) -> None:
    path = _write(tmp_path / "data" / "f.bin", b"payload")
    mode_before = stat.S_IMODE(os.stat(path).st_mode)
    manifest = snapshot_files(path, store, link="copy")
    obj = _obj(store, manifest.entries[0].digest)
    assert os.stat(obj).st_ino != os.stat(path).st_ino
    assert os.stat(path).st_nlink == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == mode_before  # the user's file untouched
    assert stat.S_IMODE(os.stat(obj).st_mode) & 0o222 == 0
    path.write_bytes(b"changed")  # an in-place edit cannot reach the copy
    assert store.get_bytes(manifest.entries[0].digest) == b"payload"


def test_link_hardlink_fails_loudly_where_auto_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: FsspecArtifactStore
) -> None:
    path = _write(tmp_path / "f.bin", b"payload")
    digest = blake3(b"payload").hexdigest()

    def no_links(src: str, dst: str) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    with pytest.raises(StoreError, match="could not hardlink"):
        store.adopt_file(str(path), digest=digest, size=7, link="hardlink")
    assert store.adopt_file(str(path), digest=digest, size=7) == "copy"  # auto: EXDEV -> copy
    assert store.adopt_file(str(path), digest=digest, size=7) == "exists"


def test_adopt_refuses_a_file_that_changed_after_it_was_hashed(
    tmp_path: Path, store: FsspecArtifactStore
) -> None:
    path = _write(tmp_path / "f.bin", b"payload")
    st = os.stat(path)
    digest = blake3(b"payload").hexdigest()
    with pytest.raises(InvalidStateError, match="changed after it was hashed"):
        store.adopt_file(str(path), digest=digest, size=7, mtime_ns=st.st_mtime_ns - 1)
    with pytest.raises(InvalidStateError, match="changed after it was hashed"):
        store.adopt_file(str(path), digest="0" * 64, size=7, link="copy")
    assert not store.exists(digest) and not store.exists("0" * 64)
    assert _objects(store) == []
    assert stat.S_IMODE(os.stat(path).st_mode) == stat.S_IMODE(st.st_mode)  # left writable
    assert os.stat(path).st_nlink == 1


def test_a_corrupted_object_is_never_restored_by_a_copy(
    tmp_path: Path, store: FsspecArtifactStore
) -> None:
    path = _write(tmp_path / "data" / "f.bin", b"payload")
    manifest = snapshot_files(path.parent, store)
    path.chmod(0o644)
    path.write_bytes(b"PAYLOAD")  # an in-place edit of the hardlinked file, by force
    with pytest.raises(StoreError, match="corrupted"):
        checkout_files(manifest, store, tmp_path / "out", link="copy")


def test_missing_lists_absent_objects_whether_it_stats_or_lists(
    tmp_path: Path, store: FsspecArtifactStore
) -> None:
    present = [store.put_bytes(f"object {i}".encode())[0] for i in range(3)]
    absent_few = ["ab" + "0" * 62, "cd" + "1" * 62]
    # Many wanted digests under one prefix folder: that folder is listed, not stat-ed.
    same_prefix = []
    for i in range(40):
        digest = store.put_bytes(f"same prefix {i}".encode())[0]
        target = _obj(store, "ee" + digest[2:])
        target.parent.mkdir(exist_ok=True)
        os.replace(_obj(store, digest), target)
        same_prefix.append("ee" + digest[2:])
    absent_many = ["ee" + f"{i:062x}" for i in range(30)]
    wanted = present + absent_few + same_prefix + absent_many
    assert store.missing(wanted) == set(absent_few + absent_many)
    with pytest.raises(InvalidInputError, match="64 lowercase hex"):
        store.missing(["../../etc/passwd"])


def test_missing_lists_the_whole_store_when_asked_about_most_of_it(
    store: FsspecArtifactStore,
) -> None:
    # Objects made by hand under one prefix folder, so the store is small next to the question.
    folder = Path(store.root, "objects", "ee")
    folder.mkdir()
    present = [f"ee{i:062x}" for i in range(1100)]
    for digest in present:
        (folder / digest[2:]).touch()
    absent = [f"ee{i:062x}" for i in range(5000, 5040)]
    assert store.missing(present + absent) == set(absent)
    assert store.missing(present) == set()


# --------------------------------------------------------------------------- status, cache


def test_status_is_clean_then_names_added_removed_and_modified(
    tmp_path: Path, store: FsspecArtifactStore, settled_cache: StatCache
) -> None:
    root = _tree(tmp_path / "data")
    manifest = snapshot_files(root, store, link="copy", cache=settled_cache)
    assert status_files(root, manifest, cache=settled_cache).clean

    _write(root / "img" / "new.png", b"new")
    (root / "img" / "deep" / "dog.png").unlink()
    (root / "a.csv").write_bytes(b"x,y\n9,9\n")  # same size, new content
    (root / "img" / "cat.png").write_bytes(b"a longer cat picture")
    os.chmod(root / "run.sh", 0o644)  # lost its executable bit

    for cache in (settled_cache, None):
        status = status_files(root, manifest, cache=cache)
        assert not status.clean
        assert status.added == ("img/new.png",)
        assert status.removed == ("img/deep/dog.png",)
        assert status.modified == ("a.csv", "img/cat.png", "run.sh")


def test_the_stat_cache_spares_hashing_unchanged_files(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store: FsspecArtifactStore,
    settled_cache: StatCache,
) -> None:
    root = _tree(tmp_path / "data")
    calls = _counting_hasher(monkeypatch)
    manifest = snapshot_files(root, store, cache=settled_cache)
    assert len(calls) == 4

    calls.clear()
    assert snapshot_files(root, store, cache=settled_cache).digest == manifest.digest
    assert status_files(root, manifest, cache=settled_cache).clean
    assert calls == []

    (root / "a.csv").chmod(0o644)
    (root / "a.csv").write_bytes(b"x,y\n9,9\n")  # same size: only the hash can tell
    assert status_files(root, manifest, cache=settled_cache).modified == ("a.csv",)
    assert calls == ["a.csv"]
    calls.clear()
    changed = snapshot_files(root, store, cache=settled_cache)
    assert calls == []  # status already hashed it and remembered it
    assert changed.digest != manifest.digest
    assert store.get_bytes({e.path: e for e in changed.entries}["a.csv"].digest) == b"x,y\n9,9\n"


def test_an_unchanged_tree_is_clean_without_a_look_at_each_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store: FsspecArtifactStore,
    settled_cache: StatCache,
) -> None:
    root = _tree(tmp_path / "data")
    manifest = snapshot_files(root, store, link="copy", cache=settled_cache)
    _write(_tree(tmp_path / "other") / "extra.txt", b"x")
    older = snapshot_files(tmp_path / "other", store, link="copy")
    lookups: list[str] = []
    real_lookup = StatCache.lookup

    def counting_lookup(self: StatCache, where: str) -> dict[str, files.CacheRow]:
        lookups.append(where)
        return real_lookup(self, where)

    monkeypatch.setattr(StatCache, "lookup", counting_lookup)
    calls = _counting_hasher(monkeypatch)
    assert status_files(root, manifest, cache=settled_cache).clean
    assert lookups == [] and calls == []  # the signature of the whole tree matched

    # Against another manifest the signature proves nothing: each file is looked at.
    assert status_files(root, older, cache=settled_cache).removed == ("extra.txt",)
    assert lookups == [str(root)] and calls == []

    (root / "run.sh").chmod(0o644)  # same size, mtime and inode: only the mode tells
    assert status_files(root, manifest, cache=settled_cache).modified == ("run.sh",)
    (root / "run.sh").chmod(0o755)
    assert status_files(root, manifest, cache=settled_cache).clean
    (root / "img" / "cat.png").write_bytes(b"\x89PNG CAT")  # same size, new mtime
    assert status_files(root, manifest, cache=settled_cache).modified == ("img/cat.png",)


def test_a_racy_tree_is_not_remembered(tmp_path: Path, store: FsspecArtifactStore) -> None:
    root = _tree(tmp_path / "data")
    cache = StatCache(tmp_path / "cache")  # the real clock: the files are seconds old at most
    manifest = snapshot_files(root, store, cache=cache)
    assert cache.find_tree(str(root)) is None
    settled = StatCache(tmp_path / "cache", clock=_later_clock)
    assert status_files(root, manifest, cache=settled).clean
    assert settled.find_tree(str(root)) == (
        files._tree_signature(
            files._walk(str(root)), [os.stat(p) for _, p, _ in files._walk(str(root))]
        ),
        manifest.digest,
    )


def test_the_stat_cache_persists_across_instances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: FsspecArtifactStore
) -> None:
    root = _tree(tmp_path / "data")
    with StatCache(tmp_path / "cache", clock=_later_clock) as cache:
        manifest = snapshot_files(root, store, cache=cache)
    calls = _counting_hasher(monkeypatch)
    with StatCache(tmp_path / "cache", clock=_later_clock) as cache:
        assert status_files(root, manifest, cache=cache).clean
    assert calls == []


def test_a_file_written_just_before_hashing_is_hashed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: FsspecArtifactStore
) -> None:
    """Racy git: an edit in the same mtime tick as the snapshot leaves the stat unchanged."""
    path = _write(tmp_path / "data" / "f.txt", b"version 1")
    cache = StatCache(tmp_path / "cache")  # the real clock: the file is seconds old at most
    manifest = snapshot_files(path.parent, store, link="copy", cache=cache)
    assert cache.lookup(str(tmp_path / "data")) == {}  # too fresh to vouch for

    before = os.stat(path)
    with open(path, "r+b") as fh:  # same size, same inode, and the same mtime restored
        fh.write(b"version 2")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    calls = _counting_hasher(monkeypatch)
    assert status_files(path.parent, manifest, cache=cache).modified == ("f.txt",)
    assert calls == ["f.txt"]


def test_the_cache_keeps_settled_files_and_forgets_racy_ones(tmp_path: Path) -> None:
    now = 1_000 * 10**9
    cache = StatCache(tmp_path / "cache", clock=lambda: now)
    old, fresh = now - 3 * 10**9, now - 10**9
    assert cache.record([("/d/old", 1, old, 7, "a" * 64), ("/d/fresh", 1, fresh, 8, "b" * 64)]) == 1
    assert set(cache.lookup("/d")) == {"/d/old"}
    assert cache.record([("/d/old", 1, now, 7, "c" * 64)]) == 0  # rewritten just now
    assert cache.lookup("/d") == {}
    assert cache.record([("/dx", 1, old, 9, "d" * 64), ("/d", 1, old, 9, "e" * 64)]) == 2
    assert set(cache.lookup("/d")) == {"/d"}  # a sibling named "/dx" is not under "/d"


def test_an_unreadable_cache_file_is_replaced(tmp_path: Path) -> None:
    _write(tmp_path / "cache" / StatCache.FILENAME, b"this is not a database" * 100)
    cache = StatCache(tmp_path / "cache", clock=_later_clock)
    assert cache.record([("/x", 1, 0, 1, "a" * 64)]) == 1


# --------------------------------------------------------------------------- checkout


def test_checkout_restores_bytes_and_modes_with_links_or_copies(
    tmp_path: Path, store: FsspecArtifactStore
) -> None:
    root = _tree(tmp_path / "data")
    _write(root / "same_but_executable.sh", b"x,y\n1,2\n", executable=True)  # = a.csv's bytes
    big = os.urandom(3 * 1024 * 1024)
    _write(root / "big.bin", big)
    manifest = snapshot_files(root, store)

    for link in ("auto", "copy"):
        out = tmp_path / f"out-{link}"
        counts = checkout_files(manifest, store, out, link=link)
        assert sum(counts.values()) == manifest.count
        for entry in manifest.entries:
            restored = out / entry.path
            assert restored.read_bytes() == (root / entry.path).read_bytes()
            assert bool(os.stat(restored).st_mode & 0o100) == entry.executable
        if link == "copy":
            assert counts == {"hardlink": 0, "copy": manifest.count}
        else:
            # One object serves two entries with different modes: the second one is copied.
            assert counts == {"hardlink": manifest.count - 1, "copy": 1}
            assert os.stat(out / "big.bin").st_ino == os.stat(root / "big.bin").st_ino
    assert (tmp_path / "out-copy" / "big.bin").read_bytes() == big


def test_checkout_refuses_to_overwrite_unless_asked(
    tmp_path: Path, store: FsspecArtifactStore
) -> None:
    root = _tree(tmp_path / "data")
    manifest = snapshot_files(root, store)
    out = tmp_path / "out"
    _write(out / "a.csv", b"local edits")
    _write(out / "untracked.txt", b"mine")
    with pytest.raises(InvalidStateError, match="exist already") as exc:
        checkout_files(manifest, store, out)
    assert exc.value.details["existing"] == ["a.csv"]
    assert (out / "a.csv").read_bytes() == b"local edits"
    checkout_files(manifest, store, out, overwrite=True)
    assert (out / "a.csv").read_bytes() == b"x,y\n1,2\n"
    assert (out / "untracked.txt").read_bytes() == b"mine"
    assert status_files(out, manifest).added == ("untracked.txt",)


def test_a_store_that_cannot_link_copies_through_the_defaults(tmp_path: Path) -> None:
    remote = FsspecArtifactStore(f"memory://files-test-{time.time_ns()}")
    root = _tree(tmp_path / "data")
    manifest = snapshot_files(root, remote)
    assert stat.S_IMODE(os.stat(root / "a.csv").st_mode) & 0o200  # nothing linked, nothing locked
    assert remote.missing([e.digest for e in manifest.entries]) == set()
    counts = checkout_files(manifest, remote, tmp_path / "out")
    assert counts == {"hardlink": 0, "copy": manifest.count}
    assert (tmp_path / "out" / "img" / "deep" / "dog.png").read_bytes() == b"\x89PNG dog"
    assert os.stat(tmp_path / "out" / "run.sh").st_mode & 0o100
    with pytest.raises(StoreError, match="cannot hardlink"):
        snapshot_files(root, remote, link="hardlink")


# --------------------------------------------------------------------------- manifest format


def _raw(rows: list[tuple[str, int, str, int]], **header: object) -> bytes:
    """Manifest bytes assembled from the documented layout, independently of to_bytes."""
    paths = "\x00".join(r[0] for r in rows).encode("utf-8", "surrogateescape")
    fields = {
        "count": len(rows),
        "format": files.FORMAT,
        "paths_bytes": len(paths),
        "total_bytes": sum(r[1] for r in rows),
        **header,
    }
    return (
        json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
        + b"\n"
        + paths
        + b"".join(r[1].to_bytes(8, "little") for r in rows)
        + b"".join(bytes.fromhex(r[2]) for r in rows)
        + bytes(r[3] for r in rows)
    )


def test_manifest_bytes_follow_the_documented_layout_and_round_trip() -> None:
    entries = (
        FileEntry("ünïcödé/名前.txt", 1, "a" * 64),
        FileEntry('with space/and\nnewline\tand "quote"', 0, "b" * 64, True),
        FileEntry("back\\slash", 2**40, "c" * 64),
        FileEntry("raw\udcffbyte", 7, "d" * 64),  # a file name that is not UTF-8
    )
    manifest = FileManifest(entries)
    data = manifest.to_bytes()
    assert data == _raw(sorted((e.path, e.size, e.digest, int(e.executable)) for e in entries))
    parsed = FileManifest.from_bytes(data)
    assert parsed == manifest and parsed.entries == manifest.entries
    assert all(type(e) is FileEntry for e in parsed.entries)
    assert parsed.digest == manifest.digest == blake3(data).hexdigest()
    assert FileManifest.from_bytes(FileManifest(()).to_bytes()) == FileManifest(())


@pytest.mark.parametrize(
    "path",
    [
        "../evil",
        "/etc/passwd",
        "a/../../b",
        "a/..",
        "./a",
        "a/./b",
        "a//b",
        "a/",
        "",
        "a\x00b",
        "..",
    ],
)
def test_paths_that_could_escape_a_checkout_are_rejected(path: str) -> None:
    with pytest.raises(InvalidInputError, match="must be relative") as exc:
        FileManifest((FileEntry("ok", 1, "a" * 64), FileEntry(path, 1, "b" * 64)))
    assert exc.value.details == {"field": "path", "path": path}
    if "\x00" in path:
        return  # cannot even be written: NUL separates the paths
    rows = sorted([("ok", 1, "a" * 64, 0), (path, 1, "b" * 64, 0)])
    with pytest.raises(InvalidInputError, match="must be relative"):
        FileManifest.from_bytes(_raw(rows))


ROW = ("a", 1, "a" * 64, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_raw([ROW, ("b", 1, "b" * 64, 0)])[:-1], "holds 85 bytes after its header; got 84"),
        (_raw([ROW], count=2), "2 files with 1 bytes of paths holds 83 bytes"),
        (_raw([ROW], total_bytes=5), "says 5 bytes; its sizes add up to 1"),
        (_raw([ROW], format="other/1"), "format mlcycle.files/1"),
        (_raw([ROW]).replace(b'"count":1', b'"count": 1'), "header must be exactly"),
        (b"not json\n", "starts with a JSON header"),
        (_raw([ROW, ("a", 2, "b" * 64, 0)]), "lists 'a' twice"),
        (_raw([("b", 1, "b" * 64, 0), ROW]), "must be sorted"),
        (_raw([ROW, ("a/b", 1, "b" * 64, 0)]), "both as a file and as a folder"),
        (_raw([(*ROW[:3], 2)]), "0 or 1"),
        (_raw([ROW])[:-1] + b"\x02", "0 or 1"),
    ],
)
def test_malformed_manifests_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        FileManifest.from_bytes(data)


def test_entries_are_checked_when_a_manifest_is_built() -> None:
    with pytest.raises(InvalidInputError, match="64 lowercase hex"):
        FileManifest((FileEntry("a", 1, "A" * 64),))
    with pytest.raises(InvalidInputError, match="must be >= 0"):
        FileManifest((FileEntry("a", -1, "a" * 64),))
    with pytest.raises(InvalidInputError, match="twice"):
        FileManifest((FileEntry("a", 1, "a" * 64), FileEntry("a", 2, "b" * 64)))
    shuffled = FileManifest((FileEntry("b", 1, "b" * 64), FileEntry("a", 1, "a" * 64)))
    assert [e.path for e in shuffled.entries] == ["a", "b"]
