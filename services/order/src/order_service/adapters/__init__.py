"""Database tables and the repository that maps them to the domain."""
