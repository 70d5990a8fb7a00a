"""Validating admission for kubetune objects: who may reference what (:mod:`decide`, pure) and the
HTTPS endpoint the API server calls (:mod:`webhook`)."""
