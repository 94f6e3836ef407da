"""The app layer: the ``trpo`` command (cli, commands), the demo, plots, videos and the learner benchmarks,
and the task-name conveniences (``training``: ``trpo_tf.train``, ``config_for_task``, ``resume``).

The top of the house (docs/architecture.md): it may import the exporter, the learner and ``robots``; nothing
below imports it.
"""
