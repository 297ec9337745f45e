"""Production rows that got feedback, as a dataset version a retraining pipeline can read.

The labelled rows of a deployment's prediction logs (inputs plus the newest label per row, see
:mod:`mlcycle.monitoring.logs`) are ingested as a version of ``<dataset>.feedback`` with the
label in the training data's target column. Ingesting the same rows again returns the version
that holds them, so repeated retrainings on unchanged feedback add no versions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from mlcycle.monitoring.logs import LogWindow, PredictionLogs, input_columns

if TYPE_CHECKING:
    from mlcycle.client import Client
    from mlcycle.entities import DatasetVersion, Trigger

__all__ = ["feedback_dataset", "ingest_feedback", "labelled_rows"]


def feedback_dataset(dataset: str) -> str:
    """The name of the dataset that holds *dataset*'s production feedback."""
    return f"{dataset}.feedback"


def labelled_rows(logs: PredictionLogs, deployment: str, target: str,
                  window: LogWindow = LogWindow()) -> pl.DataFrame:
    """The answered rows of *deployment* in *window* that got a label: their inputs (without
    the ``input_`` prefix) and the label as column *target* (integers when every label is)."""
    frame = logs.read(deployment, window)
    # A shadowed request is logged twice (the answer and the shadow's): train on it once.
    frame = frame.filter(pl.col("label").is_not_null() & (pl.col("status") < 400)
                         & (pl.col("role") != "shadow"))
    out = frame.select(*(pl.col(c).alias(c.removeprefix("input_"))
                         for c in input_columns(frame)), pl.col("label").alias(target))
    labels = out[target]
    if labels.len() and labels.dtype.is_float() and (labels.round(0) == labels).all():
        out = out.with_columns(pl.col(target).cast(pl.Int64))
    return out


def ingest_feedback(client: Client, trigger: Trigger) -> DatasetVersion | None:
    """A version of ``<dataset>.feedback`` with every labelled production row of the trigger's
    deployment, or ``None`` when there is none."""
    logs = PredictionLogs(client.settings.resolved_prediction_log_uri,
                          storage_options=client.settings.artifact_options)
    rows = labelled_rows(logs, trigger.deployment, trigger.target)
    if rows.height == 0:
        return None
    return client.data.ingest(
        feedback_dataset(trigger.dataset), rows,
        description=(f"production rows of deployment {trigger.deployment!r} that got feedback "
                     f"(label in {trigger.target!r}), read from the prediction logs for "
                     f"trigger {trigger.name!r}"),
        tags={"source": "prediction-logs", "deployment": trigger.deployment,
              "trigger": trigger.name})
