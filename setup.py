"""Attention model zoo for Keras 3 and TensorFlow."""

from setuptools import find_packages, setup

setup(
    name="attention-zoo",
    version="0.1.0",
    description="Attention layers and models for Keras 3, ready to tune and serve.",
    python_requires=">=3.10",
    packages=find_packages(
        include=[
            "layers",
            "layers.*",
            "training",
            "training.*",
            "zoo",
            "zoo.*",
            "zoo_cli",
        ]
    ),
    install_requires=[
        "keras>=3.15.1",
        "keras-tuner>=1.4.7",
        "tensorflow-datasets>=4.9.7",
        # tensorflow-datasets' download code imports it without declaring it.
        "importlib_resources",
        # keras-tuner fails every trial without it.
        "tensorboard",
        "numpy",
        # zoo.seq2seq.metrics: BLEU and chrF, ROUGE.
        "sacrebleu>=2.4",
        "rouge-score>=0.1.2",
        # training.detection_metrics: COCO mAP.
        "pycocotools>=2.0.7",
        # keras-tuner's distributed mode (chief/worker over gRPC) imports
        # them without declaring them.
        "grpcio",
        "protobuf",
        # zoo.actor_critic: the CartPole environment.
        "gymnasium>=1.0",
    ],
    extras_require={
        # TensorFlow is an extra so that CPU machines can take the small
        # tensorflow-cpu wheel and GPU machines the full one.
        "cpu": ["tensorflow-cpu>=2.21,<2.22"],
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        "dev": ["pytest", "pytest-xdist", "ruff", "jax", "matplotlib"],
    },
    entry_points={"console_scripts": ["zoo=zoo_cli:main"]},
)
