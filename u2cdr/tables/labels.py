"""Display names used in tables: datasets, domain short codes, scenarios, metrics and flags.

Headers read like the UEM paper's (Wang et al., NeurIPS 2024, Tables 1-8): a direction is
``query→gallery`` in the dataset's short codes ("A→D" on Office-31, "Qu→Cl" on DomainNet).
Datasets without codes (digits, user datasets) show their domain names as they are.
"""
from __future__ import annotations

SCENARIOS = ("closed", "partial", "open")

DATASET_NAMES: dict[str, str] = {
    "office31": "Office-31",
    "office_home": "Office-Home",
    "domainnet7": "DomainNet-7",
    "digits": "Digits",
}

DOMAIN_CODES: dict[str, dict[str, str]] = {
    "office31": {"amazon": "A", "dslr": "D", "webcam": "W"},
    # The paper's CSV spells Real World 'real_world'; a loader may call the folder 'real'.
    "office_home": {"art": "A", "clipart": "C", "product": "P", "real_world": "R", "real": "R"},
    "domainnet7": {"quickdraw": "Qu", "clipart": "Cl", "painting": "Pa", "infograph": "In",
                   "sketch": "Sk", "real": "Re"},
}

SCENARIO_NAMES: dict[str, str] = {"closed": "closed-set", "partial": "partial", "open": "open-set"}

# The metrics a table shows per scenario, in cell order ("mAP / Acc" in open-set, as in
# the paper's Tables 3, 7 and 8). In the open scenario ``map_all`` is the shared-set mAP@All.
SCENARIO_METRICS: dict[str, tuple[str, ...]] = {
    "closed": ("map_all",),
    "partial": ("map_all",),
    "open": ("map_all", "open_set_acc"),
}

METRIC_NAMES: dict[str, str] = {
    "map_all": "mAP@All",
    "map_all_micro": "mAP@All (per-query mean)",
    "open_set_acc": "open-set accuracy",
    "false_reject_rate": "false-reject rate",
    "p@1": "P@1",
    "p@5": "P@5",
}

LOWER_IS_BETTER: frozenset[str] = frozenset({"false_reject_rate"})

# Explanations of record flags that a reader must know to judge a number; a flag not listed
# here is still footnoted, as ``key=value``.
FLAG_NOTES: dict[tuple[str, str], str] = {
    ("num_clusters", "oracle"): "given the true class count",
    ("model_selection", "best_on_eval"): "checkpoint chosen by its score on the evaluation data",
}

# Flags that only change open-set results (how private queries are detected): footnoting them
# under closed or partial tables would suggest a difference those numbers do not have.
OPEN_SET_ONLY_FLAGS = frozenset({"private_detection"})

USES_LABELS_NOTE = "uses labels: an oracle that reads the class labels in training; not ranked"


def dataset_name(dataset: str) -> str:
    """The dataset's display name, or its id when it has none."""
    return DATASET_NAMES.get(dataset, dataset)


def domain_code(dataset: str, domain: str) -> str:
    """The paper's short code of ``domain`` ("amazon" → "A" on office31), else the name."""
    return DOMAIN_CODES.get(dataset, {}).get(domain, domain)


def pair_header(dataset: str, query: str, gallery: str) -> str:
    """Column header of one retrieval direction, e.g. ``A→D``."""
    return f"{domain_code(dataset, query)}→{domain_code(dataset, gallery)}"


def metric_name(metric: str, scenario: str) -> str:
    """What a metric is called in a caption; open-set mAP is over shared-class queries only."""
    if metric == "map_all" and scenario == "open":
        return "shared-set mAP@All"
    return METRIC_NAMES.get(metric, metric)


def flag_note(key: str, value: object) -> str:
    """Footnote text of one record flag: ``key=value`` and, when known, what it means."""
    text = f"{key}={value}"
    meaning = FLAG_NOTES.get((key, str(value)))
    return f"{text}: {meaning}" if meaning else text
