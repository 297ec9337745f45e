"""A content-addressed object store over fsspec.

Objects live at ``<root>/objects/<first two hex digits>/<rest of the digest>``, so the same
bytes are stored once however many runs log them. Local writes go to a temporary name and are
renamed into place (readers never see half a file); object stores such as S3 make each PUT atomic
themselves.

Adopted files (``adopt_file``, used by ``mlcycle.datasets.files``) are hardlinked into
``objects/`` on a local store: versioning costs one hash and no second write. A hardlinked
object shares its inode with the user's file, so an in-place edit of that file would change the
stored object too. Such objects are therefore made read-only (their write bits are cleared,
which also makes the user's file read-only, like DVC's protected mode: an editor that saves by
writing a new file and renaming it works, an in-place write fails), and every copy out of the
store re-checks the digest (``get_file``), so a corrupted object is reported, never restored.
The superuser ignores file modes; ``link="copy"`` always stores an independent copy.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from typing import IO, Any

import fsspec
from blake3 import blake3

from mlcycle.errors import ArtifactNotFound, InvalidInputError, InvalidStateError, StoreError
from mlcycle.store.base import ArtifactStore, check_link_mode

__all__ = ["FsspecArtifactStore", "digest_bytes", "digest_file"]

_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
_BIG_CHUNK = 16 << 20  # copies of large files hash each chunk on several threads
_WRITE_BITS = 0o222
_LIST_MIN = 16  # fewer wanted digests in a prefix folder than this: stat each


def digest_bytes(data: bytes) -> str:
    return blake3(data).hexdigest()


def digest_file(path: str) -> tuple[str, int]:
    """BLAKE3 digest and size of a local file, read in chunks."""
    hasher = blake3()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


class FsspecArtifactStore(ArtifactStore):
    """``FsspecArtifactStore("/data/artifacts")`` or ``("s3://bucket/prefix", key=..., ...)``."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self.root = root.rstrip("/")
        self._local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple)
                                 else (self.fs.protocol,))
        if self._local:
            os.makedirs(self._objects_dir(), exist_ok=True)

    def _objects_dir(self) -> str:
        return f"{self.root}/objects"

    def _path(self, digest: str) -> str:
        if not _DIGEST_RE.match(digest):
            raise InvalidInputError(
                f"digest must be 64 lowercase hex characters, got {digest!r}",
                details={"field": "digest"},
            )
        return f"{self.root}/objects/{digest[:2]}/{digest[2:]}"

    def exists(self, digest: str) -> bool:
        return bool(self.fs.exists(self._path(digest)))

    def size(self, digest: str) -> int:
        try:
            return int(self.fs.size(self._path(digest)))
        except FileNotFoundError:
            raise ArtifactNotFound(
                f"no artifact object with digest {digest}", details={"digest": digest}
            ) from None

    def put_file(self, path: str, *, digest: str | None = None) -> tuple[str, int]:
        if digest is None:
            digest, size = digest_file(path)
        else:
            size = os.path.getsize(path)
        target = self._path(digest)
        if self.fs.exists(target):
            return digest, size
        try:
            if self._local:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".incoming-")
                try:
                    with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                        while chunk := src.read(_CHUNK):
                            out.write(chunk)
                    os.replace(tmp, target)
                except BaseException:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
                    raise
            else:
                self.fs.put_file(path, target)
        except OSError as exc:
            raise StoreError(f"could not store artifact {digest}: {exc}") from exc
        return digest, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        digest = digest_bytes(data)
        target = self._path(digest)
        if self.fs.exists(target):
            return digest, len(data)
        try:
            if self._local:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".incoming-")
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.replace(tmp, target)
            else:
                self.fs.pipe_file(target, data)
        except OSError as exc:
            raise StoreError(f"could not store artifact {digest}: {exc}") from exc
        return digest, len(data)

    def open(self, digest: str) -> IO[bytes]:
        path = self._path(digest)
        try:
            return self.fs.open(path, "rb")
        except FileNotFoundError:
            raise ArtifactNotFound(
                f"no artifact object with digest {digest}", details={"digest": digest}
            ) from None

    def get_file(self, digest: str, dest: str) -> None:
        """Copy the object to *dest* and check its digest on the way (a corrupted object fails)."""
        hasher = blake3()
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        tmp = dest + ".partial"
        with self.open(digest) as src, open(tmp, "wb") as out:
            while chunk := src.read(_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        if hasher.hexdigest() != digest:
            os.unlink(tmp)
            raise StoreError(f"artifact object {digest} is corrupted: its content hash differs")
        os.replace(tmp, dest)

    def describe(self) -> dict[str, Any]:
        return {"kind": "fsspec", "url": self.url}

    def scratch_dir(self) -> str | None:
        return f"{self.root}/tmp" if self._local else None

    # files hashed by the caller -------------------------------------------------------------

    def adopt_file(
        self,
        path: str,
        *,
        digest: str,
        size: int,
        link: str = "auto",
        mtime_ns: int | None = None,
    ) -> str:
        """Hardlink (local store, same filesystem) or copy a file the caller has hashed.

        ``"auto"`` falls back to a copy when the store is on another filesystem, the
        filesystem refuses links, or the file cannot be made read-only (not its owner). A
        copy is hashed on the way and must match *digest*, so a file edited after it was
        hashed is refused rather than stored under a wrong name.
        """
        check_link_mode(link)
        if not self._local:
            return super().adopt_file(path, digest=digest, size=size, link=link, mtime_ns=mtime_ns)
        target = self._path(digest)
        if link != "copy":
            how = self._link_in(
                path, target, size=size, mtime_ns=mtime_ns, strict=link == "hardlink"
            )
            if how is not None:
                return how
        return self._copy_in(path, target, digest=digest, size=size)

    def _link_in(
        self, path: str, target: str, *, size: int, mtime_ns: int | None, strict: bool
    ) -> str | None:
        """``"hardlink"`` or ``"exists"``; ``None`` when linking is not possible here."""
        try:
            try:
                os.link(path, target)
            except FileNotFoundError:
                if not os.path.exists(path):
                    raise
                # Only the prefix folder is missing: trying first spares a mkdir per file.
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.link(path, target)
        except FileExistsError:
            return "exists"
        except FileNotFoundError:
            raise InvalidStateError(
                f"{path} disappeared while it was being versioned", details={"path": path}
            ) from None
        except OSError as exc:
            if strict:
                raise StoreError(
                    f"could not hardlink {path} into the artifact store: {exc}",
                    details={"path": path},
                ) from exc
            return None
        try:
            st = os.stat(target)
            mode = stat.S_IMODE(st.st_mode)
            if mode & _WRITE_BITS:
                os.chmod(target, mode & ~_WRITE_BITS)
        except OSError as exc:  # not the owner: an unprotected link is worse than a copy
            with contextlib.suppress(OSError):
                os.unlink(target)
            if strict:
                raise StoreError(
                    f"could not make {path} read-only after linking it: {exc}",
                    details={"path": path},
                ) from exc
            return None
        # Checked after the chmod: a write that slipped in before it shows in the mtime.
        if st.st_size != size or (mtime_ns is not None and st.st_mtime_ns != mtime_ns):
            with contextlib.suppress(OSError):
                os.chmod(target, mode)  # the user's file as it was
                os.unlink(target)
            raise InvalidStateError(
                f"{path} changed after it was hashed; version it again",
                details={"path": path},
            )
        return "hardlink"

    def _copy_in(self, path: str, target: str, *, digest: str, size: int) -> str:
        if os.path.exists(target):
            return "exists"
        directory = os.path.dirname(target)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".incoming-")
        try:
            hasher = blake3(max_threads=blake3.AUTO) if size >= _BIG_CHUNK else blake3()
            chunk_size = _BIG_CHUNK if size >= _BIG_CHUNK else _CHUNK
            copied = 0
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                while chunk := src.read(chunk_size):
                    hasher.update(chunk)
                    out.write(chunk)
                    copied += len(chunk)
            if copied != size or hasher.hexdigest() != digest:
                raise InvalidStateError(
                    f"{path} changed after it was hashed; version it again",
                    details={"path": path},
                )
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        except FileNotFoundError:
            raise InvalidStateError(
                f"{path} disappeared while it was being versioned", details={"path": path}
            ) from None
        except OSError as exc:
            raise StoreError(f"could not store artifact {digest}: {exc}") from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return "copy"

    def missing(self, digests: Iterable[str]) -> set[str]:
        """On a local store, the cheapest of: one listing of the whole store (asked about
        most of it, as a re-snapshot of a big folder is), a listing per prefix folder, or one
        ``stat`` per digest (fsspec's ``exists`` costs ~10 µs a call, a ``stat`` ~7 µs, a name
        in a listing ~2 µs). A folder's size in bytes (~64-170 per entry on ext4 and xfs)
        estimates its entries without reading it; a wrong guess only costs time.
        """
        if not self._local:
            return super().missing(digests)
        wanted = set(digests)
        if not _all_hex_digests(wanted):
            for digest in wanted:
                self._path(digest)  # raises, naming the bad one
        objects = self._objects_dir()
        if len(wanted) >= 64 * _LIST_MIN:
            # Many digests: when the whole store is not much bigger, one listing of it and a
            # set difference beat any per-digest work.
            try:
                prefixes = [p for p in os.listdir(objects) if len(p) == 2]
                estimate = sum(os.stat(f"{objects}/{p}").st_size for p in prefixes) // 64
            except FileNotFoundError:
                return wanted
            if estimate <= 3 * len(wanted):
                present: set[str] = set()
                for p in prefixes:
                    present.update([p + name for name in os.listdir(f"{objects}/{p}")])
                return wanted - present
        by_prefix: dict[str, list[str]] = {}
        for digest in wanted:
            by_prefix.setdefault(digest[:2], []).append(digest)
        absent: set[str] = set()
        for prefix, group in by_prefix.items():
            folder = f"{objects}/{prefix}"
            if len(group) >= _LIST_MIN:
                try:
                    estimate = os.stat(folder).st_size // 64
                except FileNotFoundError:
                    absent.update(group)
                    continue
                if estimate <= 3 * len(group):
                    names = set(os.listdir(folder))
                    absent.update(digest for digest in group if digest[2:] not in names)
                    continue
            exists = os.path.exists
            absent.update(digest for digest in group if not exists(f"{folder}/{digest[2:]}"))
        return absent

    def materialize_file(
        self, digest: str, dest: str, *, link: str = "auto", executable: bool = False
    ) -> str:
        """Hardlink the object at *dest* when the store is local and the object's executable
        bit is the one wanted (a link cannot have a mode of its own); otherwise copy it and
        check its digest. The object is made read-only before it is shared."""
        check_link_mode(link)
        if self._local and link != "copy":
            obj = self._path(digest)
            try:
                st = os.stat(obj)
            except FileNotFoundError:
                raise ArtifactNotFound(
                    f"no artifact object with digest {digest}", details={"digest": digest}
                ) from None
            mode = stat.S_IMODE(st.st_mode)
            if bool(mode & 0o100) == executable:
                try:
                    if mode & _WRITE_BITS:
                        os.chmod(obj, mode & ~_WRITE_BITS)
                    _link_replacing(obj, dest)
                    return "hardlink"
                except OSError as exc:
                    if link == "hardlink":
                        raise StoreError(
                            f"could not hardlink object {digest} to {dest}: {exc}",
                            details={"digest": digest, "dest": dest},
                        ) from exc
            elif link == "hardlink":
                raise StoreError(
                    f"cannot hardlink object {digest} to {dest}: the object's executable bit "
                    "differs from the one wanted; use link='auto' or 'copy'",
                    details={"digest": digest, "dest": dest},
                )
        return super().materialize_file(digest, dest, link="copy", executable=executable)


def _all_hex_digests(digests: set[str]) -> bool:
    """Whether every string is 64 lowercase hex digits, in C-speed passes over all of them."""
    if not set(map(len, digests)) <= {64}:
        return False
    try:
        joined = "".join(digests).encode("ascii")
    except UnicodeEncodeError:
        return False
    return not joined.translate(None, b"0123456789abcdef")


def _link_replacing(src: str, dest: str) -> None:
    """Hardlink *src* at *dest*; an existing *dest* is replaced atomically."""
    try:
        os.link(src, dest)
        return
    except FileExistsError:
        pass
    tmp = f"{dest}.mlcycle-link"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.link(src, tmp)
    try:
        os.replace(tmp, dest)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
