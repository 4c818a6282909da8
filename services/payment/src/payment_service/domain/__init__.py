"""Payment rules in plain Python: accounts, charges, refunds and why a charge is declined."""
