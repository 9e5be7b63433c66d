"""Clients of other systems (Maverick). Each keeps its system's wire format to itself."""
