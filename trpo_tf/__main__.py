"""``python -m trpo_tf ...`` is the ``trpo`` command (an entry point: the one learner-package module that
imports the app; pyproject.toml's import contracts list it as the exception)."""

from trpo_tf.app.cli import console_main

if __name__ == "__main__":
    console_main()
