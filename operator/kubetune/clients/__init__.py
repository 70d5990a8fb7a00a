"""Clients: the only kubetune code that talks to the network (Kubernetes, Prometheus, registries).

Each module wraps one remote API and maps its failures to errors a user can act on; everything
else in kubetune calls these instead of opening connections itself.
"""
