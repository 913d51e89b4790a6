"""Storage: SQLAlchemy 2 tables, engine creation and Alembic migrations."""
