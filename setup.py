"""Install nnc: the ``codec`` package, the ``nnc`` command (cli.py) and the weights folder."""

from pathlib import Path

from setuptools import setup

WEIGHT_FILES = [str(path) for path in sorted(Path("weights").iterdir()) if path.is_file()]

setup(
    name="nnc",
    version="0.17.2",
    description="Learned image codec for slow links: HEVC luma stream, color hints, learned decoder stages",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=["codec", "codec.models", "codec.training"],
    py_modules=["cli"],
    data_files=[("share/nnc/weights", WEIGHT_FILES)],
    install_requires=[
        # 2.13.0 is the CPU build on our machines; a range would let pip fetch a multi-GB CUDA build.
        "torch==2.13.0",
        "numpy>=1.24",
        "pillow>=10.1",
        "pillow-heif>=0.18",
        "construct>=2.10,<2.11",
        "click>=8.1",
        "constriction>=0.4,<0.6",
        "pytorch-msssim>=1.0",
    ],
    extras_require={
        "bench": ["matplotlib>=3.7", "pillow-jxl-plugin>=1.2"],
        "cluster": ["distributed>=2024.1"],
        "test": ["pytest>=7", "hypothesis>=6", "ruff>=0.4", "matplotlib>=3.7", "pillow-jxl-plugin>=1.2",
                 "distributed>=2024.1"],
    },
    entry_points={"console_scripts": ["nnc=cli:main"]},
)
