"""Pure business rules: products, stock and reservations."""
