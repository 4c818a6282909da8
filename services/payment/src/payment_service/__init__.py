"""The payment service: customer accounts, charges and refunds for orders."""
