"""Events published by the order service on `orders.events`."""
