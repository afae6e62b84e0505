"""Persistence for the service: SQLAlchemy Core tables, Alembic migrations, SQLite or PostgreSQL."""
