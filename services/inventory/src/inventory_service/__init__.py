"""Inventory service: products, stock levels and the reservations the order saga makes."""
