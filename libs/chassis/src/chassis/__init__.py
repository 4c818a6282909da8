"""Infrastructure shared by the services: outbox, inbox, consumer loop, DB, health. No business rules."""
