"""Pulse: a support-ticket backend in which every ticket is a Temporal workflow."""
