"""Alembic trees for the API schema (api/) and the cell schema (cell/).

Installed as the ``cellctl.migrations`` package (see setup.cfg).
"""
