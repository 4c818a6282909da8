"""Events published by the payment service on `payments.events`."""
