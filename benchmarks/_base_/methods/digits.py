# Digits-sized variants of every method, for the offline CPU benchmark (benchmarks/default.py):
# mnist (5,000) <-> uci (1,797) images of 1x28x28, two CPU cores, about a minute per cell.
# Both methods use the same small backbone (small_cnn, width 16 -> 64-d pooled features), so the
# pretrained row is the random-feature floor that instdisc must beat.
# Measured with `u2cdr run benchmarks/default.py` (protocol uem: CoDA mAP@All, VOC AP, macro
# over classes), closed set, seed 2024 / seed 2025:
#   pretrained  mnist->uci 14.9 / 15.8   uci->mnist 17.9 / 14.6
#   instdisc    mnist->uci 23.1 / 21.0   uci->mnist 22.5 / 20.8
# (16 epochs, batch 128 per domain, lr 0.06; about 45 s per closed-set cell on 2 busy cores.)
# bank_momentum stays at UEM's 0.99: NPID's 0.5 fell below the floor (11.9 / 11.8) in an 8-epoch
# width-32 tuning run.
method_library = dict(
    pretrained=dict(
        type='pretrained',
        backbone=dict(type='small_cnn', in_channels=1, width=16),
        embedding='backbone',
        batch_size=256,
    ),
    instdisc=dict(
        type='instdisc',
        backbone=dict(type='small_cnn', in_channels=1, width=16),
        epochs=16,
        batch_size=128,
        lr=0.06,
        weight_decay=5e-4,
        temperature=0.07,
        bank_momentum=0.99,
        negatives='bank',
        embedding='head',
    ),
)
