"""The mathematics of signal propagation at initialisation, apart from any measurement: the mean-field
maps of an elementwise activation (`meanfield`) and their fixed-point structure (`fixed_points`), the
maps chained through a model's graph (`propagation`), the finite-width band around them (`band`), and
the theory of a stretch's Jacobian spectrum (`spectrum`). It imports nothing above `template.models`:
the inits, the monitor, the sweep and the `make theory` command all build on it.
"""
