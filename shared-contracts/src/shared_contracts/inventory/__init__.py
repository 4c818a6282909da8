"""Events published by the inventory service on `inventory.events` and `inventory.products`."""
