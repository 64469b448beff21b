"""The error raised when training cannot resume from its backup folder."""


class BackupError(ValueError):
    """A backup is truncated, corrupt, incomplete or of another model.

    The message is one line: the backup folder, what is wrong with it, and the
    fix (rerun with `--no-resume` in `zoo train`, `resume=False` in
    `training.fit.fit_model`, to delete it and start afresh).

    Args:
        backup_dir: the backup folder.
        reason: what is wrong with it.
    """

    def __init__(self, backup_dir, reason):
        self.backup_dir = backup_dir
        self.reason = reason
        super().__init__(
            f"Cannot resume from the backup in {backup_dir}: {reason}. Rerun "
            "with --no-resume (zoo train) or resume=False (fit_model) to delete "
            "it and start afresh."
        )
