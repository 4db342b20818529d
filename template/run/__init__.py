"""A run's lifecycle, around the training itself: its folder (`folder`), what it prints before it trains
(`info`), its provenance, its loggers, its learning-rate plan (`schedule`), the random state its
checkpoints carry (`rng`), resuming a stopped run (`resume`) and continuing a requeued one (`requeue`).
It imports the config and its schema, never the models, data, inits, monitor or commands.
"""
