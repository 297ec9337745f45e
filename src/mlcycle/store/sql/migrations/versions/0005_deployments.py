"""deployments: deployment state, its events, and serving workers' reports

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deployments',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('model', sa.String(length=256), nullable=False),
    sa.Column('stable_version', sa.Integer(), nullable=False),
    sa.Column('candidate_version', sa.Integer(), nullable=True),
    sa.Column('previous_version', sa.Integer(), nullable=True),
    sa.Column('strategy', sa.String(length=16), nullable=False),
    sa.Column('phase', sa.String(length=16), nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('rollout', sa.Integer(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_deployments'))
    )
    op.create_table('deployment_events',
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('deployment', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=256), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['deployment'], ['deployments.name'], name=op.f('fk_deployment_events_deployment_deployments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_deployment_events'))
    )
    with op.batch_alter_table('deployment_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deployment_events_deployment_event_id'), ['deployment', 'event_id'], unique=False)

    op.create_table('deployment_workers',
    sa.Column('deployment', sa.String(length=128), nullable=False),
    sa.Column('worker_id', sa.String(length=256), nullable=False),
    sa.Column('heartbeat_at', sa.BigInteger(), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.Column('rollout', sa.Integer(), nullable=False),
    sa.Column('ready_versions', sa.JSON(), nullable=False),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.Column('info', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['deployment'], ['deployments.name'], name=op.f('fk_deployment_workers_deployment_deployments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('deployment', 'worker_id', name=op.f('pk_deployment_workers'))
    )


def downgrade() -> None:
    op.drop_table('deployment_workers')
    with op.batch_alter_table('deployment_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deployment_events_deployment_event_id'))

    op.drop_table('deployment_events')
    op.drop_table('deployments')
