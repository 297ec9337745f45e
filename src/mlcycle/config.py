"""Typed settings, read from (highest first) arguments, ``MLCYCLE_*`` environment variables,
an optional ``mlcycle.yaml`` (path in ``MLCYCLE_CONFIG``, default ``./mlcycle.yaml``) and defaults.

This is the only module that reads ``os.environ``; everything else receives a ``Settings``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

__all__ = ["Settings", "load_settings"]


def _yaml_path() -> Path:
    return Path(os.environ.get("MLCYCLE_CONFIG", "mlcycle.yaml"))


class Settings(BaseSettings):
    """Everything configurable. ``Settings(home=...)`` in tests; ``load_settings()`` in programs."""

    model_config = SettingsConfigDict(env_prefix="MLCYCLE_", extra="ignore", frozen=True)

    home: Path = Field(default=Path(".mlcycle"), description="Folder of the embedded store.")
    tracking_uri: str | None = Field(
        default=None,
        description="sqlite:///path, postgresql+psycopg://..., or http(s)://host:port. "
        "Default: sqlite under `home`.",
    )
    artifact_uri: str | None = Field(
        default=None, description="A folder or any fsspec URL. Default: `home`/artifacts."
    )
    artifact_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec storage options of the artifact store, e.g. "
        '{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}} for S3-compatible stores.',
    )
    token: SecretStr | None = Field(
        default=None,
        description="Client: the bearer token sent to a remote server. "
        "Server: the read-write token it accepts.",
    )
    read_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Server: extra bearer tokens that may only read."
    )
    flush_interval: float = Field(
        default=1.0, gt=0, description="Seconds between background flushes of queued metrics."
    )
    flush_batch: int = Field(default=5000, gt=0, description="Points per background write.")
    serve_model_uri: str | None = Field(
        default=None, description="The model a `mlcycle serve` worker process loads (set by the "
        "command for its workers).")
    serve_name: str | None = Field(default=None, description="The name it is served under.")
    serve_deployment: str | None = Field(
        default=None, description="The deployment a `mlcycle serve --deployment` worker follows "
        "(set by the command for its workers).")
    serve_token: SecretStr | None = Field(
        default=None, description="Model server: the bearer token /predict, /v2/models/*/infer "
        "and /feedback require (none: open). Not the tracking server's `token`.")
    serve_max_batch_size: int = Field(
        default=256, ge=1, description="Model server: rows per micro-batched model call.")
    serve_max_wait_ms: float = Field(
        default=0.0, ge=0, description="Model server: how long a micro-batch may wait to fill "
        "(0: take what queued while the previous call ran, never wait).")
    serve_max_queue: int = Field(
        default=4096, ge=1, description="Model server: rows that may wait for the model; beyond "
        "it requests get 429 with Retry-After.")
    serve_threads: int = Field(
        default=1, ge=1, description="Model server: native threads (OpenMP, BLAS) a worker's "
        "model may use per call. Requests run in parallel across workers; threads inside one "
        "call of a few rows cost more than they give, and idle OpenMP threads spin on cores "
        "other processes need.")
    serve_log: bool = Field(
        default=True, description="Model server: log every prediction and feedback label.")
    prediction_log_uri: str | None = Field(
        default=None, description="Where prediction and feedback logs go (a folder or any "
        "fsspec URL). Default: `artifact_uri`/logs.")
    prometheus_multiproc_dir: str | None = Field(
        default=None, validation_alias="PROMETHEUS_MULTIPROC_DIR",
        description="prometheus_client's multiprocess folder: set by `mlcycle serve --workers "
        "N` so that /metrics sums every worker.")

    @field_validator("read_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [t for t in (s.strip() for s in value.split(",")) if t]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            YamlConfigSettingsSource(settings_cls, yaml_file=_yaml_path()),
        )

    @property
    def resolved_tracking_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.home / 'mlcycle.db').resolve()}"

    @property
    def resolved_artifact_uri(self) -> str:
        if self.artifact_uri:
            return self.artifact_uri
        return str((self.home / "artifacts").resolve())

    @property
    def resolved_prediction_log_uri(self) -> str:
        if self.prediction_log_uri:
            return self.prediction_log_uri
        return f"{self.resolved_artifact_uri.rstrip('/')}/logs"


def redact_uri(uri: str) -> str:
    """*uri* fit to print: a password in it (``scheme://user:secret@host``) shown as ``***``."""
    scheme, sep, rest = uri.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return uri
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``mlcycle.yaml``, with *overrides* on top."""
    return Settings(**overrides)
