"""Table definitions (SQLAlchemy Core). Alembic migrations in ``migrations/`` create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(32)
KEY = String(250)

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", ID, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text),
    Column("tags", JSON, nullable=False),
    Column("lifecycle", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column(
        "experiment_id",
        ID,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("parent_run_id", ID),
    Column("lifecycle", String(16), nullable=False),
    # Serves the default order (start_time DESC, run_id DESC) from the index, so a search can
    # stop at its page size instead of sorting every match.
    Index(None, "experiment_id", "start_time", "run_id"),
    Index(None, "parent_run_id"),
)


params = Table(
    "params",
    metadata,
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    Index(None, "key", "value"),
    # Clustered on (run_id, key) on SQLite: a run's rows sit together, read without a second
    # lookup (the same holds for tags and latest_metrics).
    sqlite_with_rowid=False,
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    Index(None, "key"),
    sqlite_with_rowid=False,
)

# Every point logged, in chunks: one row holds the points of one key from one write, as three
# packed little-endian arrays (int64 steps, float64 values, int64 ms timestamps). A batch of 1,000
# points over 5 keys is 5 rows, not 1,000, and a history read decodes a few blobs instead of
# building a row object per point; NaN and infinities are stored as the IEEE values they are.
metric_chunks = Table(
    "metric_chunks",
    metadata,
    # INTEGER on SQLite makes the column the rowid (no second index); BIGINT elsewhere.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("key", KEY, nullable=False),
    Column("count", Integer, nullable=False),
    Column("steps", LargeBinary, nullable=False),
    Column("values", LargeBinary, nullable=False),
    Column("timestamps", LargeBinary, nullable=False),
    Index(None, "run_id", "key", "id"),
)

# The last point of each (run, key) by (step, timestamp): what search, ordering and tables read.
# ``value`` NULL means NaN: SQLite stores NaN as NULL, so both databases use that convention (no
# real point is NULL), and a NaN never matches a numeric comparison in a filter.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float),
    Index(None, "key", "value"),
    sqlite_with_rowid=False,
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("dataset", String(256), primary_key=True),
    Column("version", String(128), primary_key=True),
    Column("digest", String(128)),
    Column("context", JSON, nullable=False),
    Index(None, "dataset", "version"),
)

run_results = Table(
    "run_results",
    metadata,
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", JSON),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Index(None, "digest"),
)

# --- datasets -----------------------------------------------------------------------------

datasets = Table(
    "datasets",
    metadata,
    Column("dataset_id", ID, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text),
    Column("tags", JSON, nullable=False),
    Column("segments", JSON, nullable=False),  # {name: expression}
    Column("latest_version", Integer),
    Column("created_at", BigInteger, nullable=False),
)

# One immutable version per distinct content of a dataset: (dataset, digest) is unique, so
# ingesting identical rows again finds the existing version instead of numbering a new one.
dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("version_id", ID, primary_key=True),
    Column("dataset_id", ID, ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
           nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("num_rows", BigInteger),
    Column("num_bytes", BigInteger, nullable=False),
    Column("columns", JSON, nullable=False),
    Column("source", JSON, nullable=False),
    Column("fingerprint", String(64)),
    Column("profile_digest", String(64)),
    Column("parents", JSON, nullable=False),
    Column("code_hash", String(64)),
    Column("role", String(32), nullable=False),
    Column("run_id", ID),
    Column("description", Text),
    Column("tags", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("dataset_id", "version"),
    UniqueConstraint("dataset_id", "digest"),
    Index(None, "digest"),
)

dataset_contracts = Table(
    "dataset_contracts",
    metadata,
    Column("dataset_id", ID, ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
           primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("body", Text, nullable=False),
    Column("source_version", String(300)),
    Column("created_at", BigInteger, nullable=False),
)

# --- model registry -----------------------------------------------------------------------

registered_models = Table(
    "registered_models",
    metadata,
    Column("model_id", ID, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text),
    Column("tags", JSON, nullable=False),
    # The highest number handed out: the next version is this plus one, read under the row's
    # lock, so numbers never repeat even after a version is archived.
    Column("latest_version", Integer),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256)),
    Column("updated_at", BigInteger, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("model_id", ID, ForeignKey("registered_models.model_id", ondelete="CASCADE"),
           primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("source", String(1024), nullable=False),
    Column("run_id", ID),
    Column("manifest_digest", String(64)),
    Column("flavor", String(64)),
    Column("signature", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("description", Text),
    Column("tags", JSON, nullable=False),
    # Lineage beyond the run: the commit, the dataset versions read ([{dataset, version,
    # digest, context}]), the contract ref and evaluation results.
    Column("code_commit", String(64)),
    Column("datasets", JSON, nullable=False),
    Column("contract", String(300)),
    Column("evaluation", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256)),
    Index(None, "run_id"),  # "which models came from this run?"
)

# One row per alias: the primary key makes an alias unique per model, and moving it is an
# UPDATE of its row. The foreign key keeps it pointing at a version that exists.
model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", ID, primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    ForeignKeyConstraint(["model_id", "version"],
                         ["model_versions.model_id", "model_versions.version"],
                         ondelete="CASCADE"),
)

# Append-only. Keyed by the model's name, not its id: a refused write on a name no model has
# is recorded too, and the history reads the same whichever store wrote it.
model_events = Table(
    "model_events",
    metadata,
    Column("event_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("model", String(256), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("version", Integer),
    Column("alias", String(64)),
    Column("actor", String(256)),
    Column("at", BigInteger, nullable=False),
    Column("details", JSON, nullable=False),
    Index(None, "model", "event_id"),
)

# --- pipelines ------------------------------------------------------------------------------

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("pipeline_run_id", ID, primary_key=True),
    Column("pipeline", String(256), nullable=False),
    Column("target", String(512)),  # module:function, what `resume` and the CLI re-import
    Column("status", String(16), nullable=False),
    Column("executor", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("cache", Boolean, nullable=False),
    Column("spec_digest", String(64)),  # the pickled (pipeline, arguments) resume rebuilds
    Column("run_id", ID),  # the tracking run the step runs nest in
    Column("resumed_from", ID),
    Column("error", JSON),
    Column("created_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
    Index(None, "created_at", "pipeline_run_id"),
    Index(None, "pipeline", "created_at"),
)

step_runs = Table(
    "step_runs",
    metadata,
    Column("step_run_id", ID, primary_key=True),
    Column("pipeline_run_id", ID,
           ForeignKey("pipeline_runs.pipeline_run_id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),  # the order the pipeline called its steps in
    Column("node", String(256), nullable=False),
    Column("step", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("cache_key", String(64)),
    Column("code_hash", String(64)),
    Column("cache_hit", Boolean, nullable=False),
    Column("reused_from", ID),
    Column("params", JSON, nullable=False),
    Column("inputs", JSON, nullable=False),  # {argument path: digest}
    Column("outputs", JSON, nullable=False),  # [{name, digest, format, size}]
    Column("upstream", JSON, nullable=False),  # [node]
    Column("attempts", Integer, nullable=False),
    Column("run_id", ID),
    Column("error", JSON),  # {type, message, traceback}
    Column("logs", Text, nullable=False),  # the tail of what the step printed
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger),
    Column("ended_at", BigInteger),
    UniqueConstraint("pipeline_run_id", "node"),
    # A cache lookup: the newest finished step run with a key, read from the index alone.
    Index(None, "cache_key", "status", "ended_at"),
)

# --- deployments ----------------------------------------------------------------------------

# One row per deployment, read by every serving worker about once a second (by key). Every
# change is a compare-and-set on ``revision``.
deployments = Table(
    "deployments",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("model", String(256), nullable=False),
    Column("stable_version", Integer, nullable=False),
    Column("candidate_version", Integer),
    Column("previous_version", Integer),
    Column("strategy", String(16), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("weight", Float, nullable=False),
    Column("step", Integer, nullable=False),
    Column("rollout", Integer, nullable=False),
    Column("config", JSON, nullable=False),
    Column("description", Text, nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Append-only, written in the same transaction as the change it records.
deployment_events = Table(
    "deployment_events",
    metadata,
    Column("event_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("deployment", String(128), ForeignKey("deployments.name", ondelete="CASCADE"),
           nullable=False),
    Column("kind", String(32), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(256)),
    Column("details", JSON, nullable=False),
    Index(None, "deployment", "event_id"),
)

# The last report of each serving worker: replaced in place, one row per worker.
deployment_workers = Table(
    "deployment_workers",
    metadata,
    Column("deployment", String(128), ForeignKey("deployments.name", ondelete="CASCADE"),
           primary_key=True),
    Column("worker_id", String(256), primary_key=True),
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("rollout", Integer, nullable=False),
    Column("ready_versions", JSON, nullable=False),
    Column("stats", JSON, nullable=False),  # {"<version>": VersionStats.to_json()}
    Column("info", JSON, nullable=False),
)

# --- monitors -------------------------------------------------------------------------------

# One row per monitor; ``last_run_at`` and ``status`` follow its newest result (set in the
# result's transaction), so the scheduler reads one table.
monitors = Table(
    "monitors",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("deployment", String(128), nullable=False),
    Column("checks", JSON, nullable=False),  # ["drift", "performance", "operations"]
    Column("window_s", Integer, nullable=False),
    Column("interval_s", Integer, nullable=False),
    Column("thresholds", JSON, nullable=False),
    Column("segments", JSON, nullable=False),  # {name: expr}
    Column("reference", String(256)),
    Column("task", String(32)),
    Column("webhook_url", Text),
    Column("enabled", Boolean, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("last_run_at", BigInteger),
    Column("status", String(16)),
    Index(None, "deployment"),
)

# Append-only: one row per run of a monitor, the time series of its metrics.
monitor_results = Table(
    "monitor_results",
    metadata,
    Column("result_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("monitor", String(128), ForeignKey("monitors.name", ondelete="CASCADE"),
           nullable=False),
    Column("run_at", BigInteger, nullable=False),
    Column("window_start", BigInteger),
    Column("window_end", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("metrics", JSON, nullable=False),  # {name: float}
    Column("details", JSON, nullable=False),
    Index(None, "monitor", "run_at"),
)

# Append-only: a monitor's status changes, and what became of their webhook.
monitor_alerts = Table(
    "monitor_alerts",
    metadata,
    Column("alert_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("monitor", String(128), ForeignKey("monitors.name", ondelete="CASCADE"),
           nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("previous", String(16)),
    Column("message", Text, nullable=False),
    Column("result_id", BigInteger),
    Column("delivery", Text),
    Column("details", JSON, nullable=False),
    Index(None, "monitor", "alert_id"),
)

# --- triggers -------------------------------------------------------------------------------

# One row per retraining trigger of a deployment.
triggers = Table(
    "triggers",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("deployment", String(128), nullable=False),
    Column("kinds", JSON, nullable=False),  # ["drift", "schedule", ...]
    Column("pipeline", String(512), nullable=False),  # module:function
    Column("dataset", String(256), nullable=False),
    Column("target", String(256), nullable=False),
    Column("schedule", String(128)),
    Column("monitor", String(128)),
    Column("evaluation_data", String(256)),
    Column("gates", JSON, nullable=False),
    Column("params", JSON, nullable=False),
    Column("canary", JSON, nullable=False),
    Column("cooldown_s", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("description", Text, nullable=False),
    Column("seen_version", Integer),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index(None, "deployment"),
)

# One row per firing. The partial unique index is the one-at-a-time guard: at most one
# ``running`` row per deployment, whoever inserts it, enforced by the database itself.
trigger_runs = Table(
    "trigger_runs",
    metadata,
    Column("run_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("trigger", String(128), ForeignKey("triggers.name", ondelete="CASCADE"),
           nullable=False),
    Column("deployment", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("cause", JSON, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
    Column("reason", Text, nullable=False),
    Column("data", JSON, nullable=False),
    Column("pipeline_run_id", ID),
    Column("training_run_id", ID),
    Column("model", String(256)),
    Column("model_version", Integer),
    Column("gates", JSON, nullable=False),
    Column("rollout", Integer),
    Index(None, "trigger", "run_id"),
    Index("ux_trigger_runs_running_deployment", "deployment", unique=True,
          sqlite_where=text("status = 'running'"), postgresql_where=text("status = 'running'")),
)

# Named locks (``ci:<project>`` while ``mlcycle ci run`` runs): the primary key is the lock, so
# of two processes inserting the same name at once the database lets exactly one succeed.
locks = Table(
    "locks",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("owner", String(256), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("host", String(256), nullable=False),
    Column("acquired_at", BigInteger, nullable=False),
)
