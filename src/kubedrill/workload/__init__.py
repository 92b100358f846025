"""Clients that keep working through a fault and record every operation."""
