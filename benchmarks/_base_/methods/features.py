# Frozen-feature variants of every method: on a feature dataset (`features`, `frozen_features`)
# the harness replaces each method's backbone by `identity` of the vectors' width, so only the
# heads train (u2cdr/engine/frozen_mode.py). They start from the digits schedules
# (./digits.py: batch 128, lr 0.06, tau 0.07) with every retrieval taken from the trained head,
# since the backbone output is the input vectors themselves (a method with
# embedding='backbone' is refused on feature data). dgdir needs images (Fourier mixing) and is
# skipped with that reason.
_base_ = ['./digits.py']

method_library = dict(
    uem=dict(embedding='head', retrieval_space='centered'),
    dgdir=dict(embedding='head'),
)
