"""pipelines: pipeline runs and their step runs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pipeline_runs',
    sa.Column('pipeline_run_id', sa.String(length=32), nullable=False),
    sa.Column('pipeline', sa.String(length=256), nullable=False),
    sa.Column('target', sa.String(length=512), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('executor', sa.String(length=64), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('cache', sa.Boolean(), nullable=False),
    sa.Column('spec_digest', sa.String(length=64), nullable=True),
    sa.Column('run_id', sa.String(length=32), nullable=True),
    sa.Column('resumed_from', sa.String(length=32), nullable=True),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('ended_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('pipeline_run_id', name=op.f('pk_pipeline_runs'))
    )
    with op.batch_alter_table('pipeline_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pipeline_runs_created_at_pipeline_run_id'), ['created_at', 'pipeline_run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pipeline_runs_pipeline_created_at'), ['pipeline', 'created_at'], unique=False)

    op.create_table('step_runs',
    sa.Column('step_run_id', sa.String(length=32), nullable=False),
    sa.Column('pipeline_run_id', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('node', sa.String(length=256), nullable=False),
    sa.Column('step', sa.String(length=256), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('cache_key', sa.String(length=64), nullable=True),
    sa.Column('code_hash', sa.String(length=64), nullable=True),
    sa.Column('cache_hit', sa.Boolean(), nullable=False),
    sa.Column('reused_from', sa.String(length=32), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('inputs', sa.JSON(), nullable=False),
    sa.Column('outputs', sa.JSON(), nullable=False),
    sa.Column('upstream', sa.JSON(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=True),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.Column('logs', sa.Text(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('started_at', sa.BigInteger(), nullable=True),
    sa.Column('ended_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['pipeline_run_id'], ['pipeline_runs.pipeline_run_id'], name=op.f('fk_step_runs_pipeline_run_id_pipeline_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('step_run_id', name=op.f('pk_step_runs')),
    sa.UniqueConstraint('pipeline_run_id', 'node', name=op.f('uq_step_runs_pipeline_run_id_node'))
    )
    with op.batch_alter_table('step_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_step_runs_cache_key_status_ended_at'), ['cache_key', 'status', 'ended_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('step_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_step_runs_cache_key_status_ended_at'))

    op.drop_table('step_runs')
    with op.batch_alter_table('pipeline_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pipeline_runs_pipeline_created_at'))
        batch_op.drop_index(batch_op.f('ix_pipeline_runs_created_at_pipeline_run_id'))

    op.drop_table('pipeline_runs')
