"""Database tables and the repository that maps rows to domain objects."""
