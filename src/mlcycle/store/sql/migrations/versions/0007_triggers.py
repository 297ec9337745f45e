"""triggers: retraining triggers of deployments and their runs

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('triggers',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('deployment', sa.String(length=128), nullable=False),
    sa.Column('kinds', sa.JSON(), nullable=False),
    sa.Column('pipeline', sa.String(length=512), nullable=False),
    sa.Column('dataset', sa.String(length=256), nullable=False),
    sa.Column('target', sa.String(length=256), nullable=False),
    sa.Column('schedule', sa.String(length=128), nullable=True),
    sa.Column('monitor', sa.String(length=128), nullable=True),
    sa.Column('evaluation_data', sa.String(length=256), nullable=True),
    sa.Column('gates', sa.JSON(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('canary', sa.JSON(), nullable=False),
    sa.Column('cooldown_s', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('seen_version', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_triggers'))
    )
    with op.batch_alter_table('triggers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_triggers_deployment'), ['deployment'], unique=False)

    op.create_table('trigger_runs',
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('trigger', sa.String(length=128), nullable=False),
    sa.Column('deployment', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('cause', sa.JSON(), nullable=False),
    sa.Column('started_at', sa.BigInteger(), nullable=False),
    sa.Column('ended_at', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('pipeline_run_id', sa.String(length=32), nullable=True),
    sa.Column('training_run_id', sa.String(length=32), nullable=True),
    sa.Column('model', sa.String(length=256), nullable=True),
    sa.Column('model_version', sa.Integer(), nullable=True),
    sa.Column('gates', sa.JSON(), nullable=False),
    sa.Column('rollout', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['trigger'], ['triggers.name'], name=op.f('fk_trigger_runs_trigger_triggers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', name=op.f('pk_trigger_runs'))
    )
    with op.batch_alter_table('trigger_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trigger_runs_trigger_run_id'), ['trigger', 'run_id'], unique=False)
        batch_op.create_index('ux_trigger_runs_running_deployment', ['deployment'], unique=True, sqlite_where=sa.text("status = 'running'"), postgresql_where=sa.text("status = 'running'"))


def downgrade() -> None:
    with op.batch_alter_table('trigger_runs', schema=None) as batch_op:
        batch_op.drop_index('ux_trigger_runs_running_deployment')
        batch_op.drop_index(batch_op.f('ix_trigger_runs_trigger_run_id'))

    op.drop_table('trigger_runs')
    with op.batch_alter_table('triggers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_triggers_deployment'))

    op.drop_table('triggers')
