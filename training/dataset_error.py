"""The one error raised for a dataset that cannot be found, prepared or read."""


class DatasetError(ValueError):
    """A dataset is unknown, not an image-classification dataset, or missing.

    The message says what is wrong and how to fix it (a manual folder, a data
    directory, the network).
    """
