"""The only home of SQLAlchemy and Alembic: tables, mapping, repositories, unit of work."""
