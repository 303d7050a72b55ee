"""Persistence: the schema (``models``), engines (``engine``) and Alembic migrations."""
