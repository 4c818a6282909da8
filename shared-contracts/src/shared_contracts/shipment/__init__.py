"""Events published by the shipping service on `shipments.events`."""
