"""Suite-wide settings: no network, no progress bars, one torch thread, a private data cache."""
import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("U2CDR_NO_PROGRESS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> str:
    """One data cache for the session (digits are built once), unless U2CDR_CACHE is set."""
    return os.environ.get("U2CDR_CACHE") or str(tmp_path_factory.mktemp("u2cdr_cache"))
