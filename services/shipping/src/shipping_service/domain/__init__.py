"""The shipping rules in plain Python: no I/O, no framework, no contracts."""
