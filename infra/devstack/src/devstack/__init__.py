"""Local stack launcher: embedded PostgreSQL per service, the Tansu broker, migrations, services."""
