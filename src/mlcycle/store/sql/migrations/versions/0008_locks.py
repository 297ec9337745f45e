"""locks: named locks held by a process (mlcycle ci run)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('locks',
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('owner', sa.String(length=256), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=256), nullable=False),
    sa.Column('acquired_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_locks'))
    )


def downgrade() -> None:
    op.drop_table('locks')
