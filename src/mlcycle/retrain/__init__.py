"""Retraining: triggers that turn a monitor's verdict, a schedule or new data into a model
that reaches production only through the gates and a canary rollout.

>>> triggers = TriggerService(client)                                   # doctest: +SKIP
>>> triggers.create("churn-retrain", "churn", kinds=["drift", "quality"],  # doctest: +SKIP
...                 pipeline="flows.retrain:train", dataset="churn", target="label",
...                 evaluation_data="churn.test", gates="gates: [{metric: roc_auc, min: 0.9}]",
...                 canary={"steps": [10, 50]}, cooldown="6h")
>>> triggers.fire("churn-retrain").status                               # doctest: +SKIP
'succeeded'

A layer above ``mlcycle.pipelines``: it runs pipelines, and the server's scheduler and the CLI
call it. ``TriggerService.on_monitor_run`` and ``run_due`` are what the monitor scheduler
calls after each monitor run and at each poll.
"""

from mlcycle.retrain.feedback import feedback_dataset, ingest_feedback, labelled_rows
from mlcycle.retrain.schedule import check_cron, last_fire_time
from mlcycle.retrain.service import TRIGGER_RUN_TAG, TRIGGER_TAG, TriggerService

__all__ = [
    "TRIGGER_RUN_TAG",
    "TRIGGER_TAG",
    "TriggerService",
    "check_cron",
    "feedback_dataset",
    "ingest_feedback",
    "labelled_rows",
    "last_fire_time",
]
