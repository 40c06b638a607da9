"""Trainers, losses, callbacks and strategies."""
