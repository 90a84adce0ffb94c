"""Alembic environment for the api schema; the shared logic is in cellctl.migrate."""

from alembic import context

from cellctl.migrate import run_environment

run_environment(context, "api")
