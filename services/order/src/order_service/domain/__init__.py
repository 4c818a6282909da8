"""The order aggregate and its saga rules: pure Python, no I/O."""
