"""Artifact bytes, content-addressed by BLAKE3 digest, on any fsspec filesystem."""

from mlcycle.store.artifacts.cas import FsspecArtifactStore, digest_bytes, digest_file

__all__ = ["FsspecArtifactStore", "digest_bytes", "digest_file"]
