"""The shipping service: The shipping service of the saga reference system."""
