"""Adapters that turn other libraries' equivariant models into features files / probes."""
