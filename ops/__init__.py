"""Operations: the pipeline in sight (/metrics for Prometheus, the admin's Pipeline page)."""
