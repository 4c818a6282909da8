"""Database tables and the repository that maps their rows to domain objects."""
