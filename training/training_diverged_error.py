"""The error raised when training reaches a non-finite loss."""


class TrainingDivergedError(RuntimeError):
    """Training stopped on a non-finite loss.

    Args:
        epoch: the (0-based) epoch of the first non-finite loss.
        batch: the (0-based) batch of that epoch.
        loss: the loss value logged there (`nan` or `inf`).
        checkpoint_path: the `.weights.h5` file holding the last weights with a
            finite loss, or `None` when no step had one.
    """

    def __init__(self, epoch, batch, loss, checkpoint_path):
        self.epoch = epoch
        self.batch = batch
        self.loss = loss
        self.checkpoint_path = checkpoint_path
        if checkpoint_path is None:
            kept = "No step had a finite loss, so no weights were saved."
        else:
            kept = (
                "The last weights with a finite loss were restored and saved to "
                f"{checkpoint_path}."
            )
        super().__init__(
            f"Training diverged: the loss became {loss} at epoch {epoch + 1}, "
            f"batch {batch + 1}. {kept} Try a lower learning rate, gradient "
            "clipping or float32 precision."
        )
