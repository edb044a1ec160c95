"""Continual-learning layer."""
