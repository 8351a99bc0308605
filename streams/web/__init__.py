"""HTTP: the REST base classes, errors and throttles (`api`), token authentication (`authentication`), the health checks (`health`)."""
