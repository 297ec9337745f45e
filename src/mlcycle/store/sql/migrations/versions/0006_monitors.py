"""monitors: monitor definitions, results and alerts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('monitors',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('deployment', sa.String(length=128), nullable=False),
    sa.Column('checks', sa.JSON(), nullable=False),
    sa.Column('window_s', sa.Integer(), nullable=False),
    sa.Column('interval_s', sa.Integer(), nullable=False),
    sa.Column('thresholds', sa.JSON(), nullable=False),
    sa.Column('segments', sa.JSON(), nullable=False),
    sa.Column('reference', sa.String(length=256), nullable=True),
    sa.Column('task', sa.String(length=32), nullable=True),
    sa.Column('webhook_url', sa.Text(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.Column('last_run_at', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_monitors'))
    )
    with op.batch_alter_table('monitors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monitors_deployment'), ['deployment'], unique=False)

    op.create_table('monitor_alerts',
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('monitor', sa.String(length=128), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('previous', sa.String(length=16), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('result_id', sa.BigInteger(), nullable=True),
    sa.Column('delivery', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['monitor'], ['monitors.name'], name=op.f('fk_monitor_alerts_monitor_monitors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('alert_id', name=op.f('pk_monitor_alerts'))
    )
    with op.batch_alter_table('monitor_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monitor_alerts_monitor_alert_id'), ['monitor', 'alert_id'], unique=False)

    op.create_table('monitor_results',
    sa.Column('result_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('monitor', sa.String(length=128), nullable=False),
    sa.Column('run_at', sa.BigInteger(), nullable=False),
    sa.Column('window_start', sa.BigInteger(), nullable=True),
    sa.Column('window_end', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['monitor'], ['monitors.name'], name=op.f('fk_monitor_results_monitor_monitors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('result_id', name=op.f('pk_monitor_results'))
    )
    with op.batch_alter_table('monitor_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monitor_results_monitor_run_at'), ['monitor', 'run_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('monitor_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monitor_results_monitor_run_at'))

    op.drop_table('monitor_results')
    with op.batch_alter_table('monitor_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monitor_alerts_monitor_alert_id'))

    op.drop_table('monitor_alerts')
    with op.batch_alter_table('monitors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monitors_deployment'))

    op.drop_table('monitors')
