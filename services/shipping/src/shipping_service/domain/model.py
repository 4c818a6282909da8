"""The shipping service's domain: its aggregates and the rules that decide.

Pure Python: no I/O, no framework, no `shared_contracts`. Each rule gets what it needs
and returns the decision, so the service layer only loads, asks and saves.
"""


class ShippingError(Exception):
    """Base class of the shipping rules' errors."""
