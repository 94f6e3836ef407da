"""The run directory's error type, in a module of its own so that every module reading a run (run_dir,
checkpoint_files, run_lock, monitor) can raise it without importing another (no import cycles)."""


class RunDirError(ValueError):
    """A missing, foreign, busy or damaged run directory. Its message is one readable line."""
