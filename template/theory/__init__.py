"""The mathematics of signal propagation at initialisation, apart from any measurement: the mean-field
maps of an elementwise activation (`meanfield`) and their fixed-point structure (`fixed_points`), the
maps chained through a model's graph (`propagation`, with `position_maps` for what a layer does to a map
over positions), what a finite width adds (`finite_width`) and the band it makes (`band`), and the
theory of a stretch's Jacobian spectrum (`spectrum`). It imports nothing above `template.models`: the
inits, the monitor, the sweep and the `make theory` command all build on it.
"""
