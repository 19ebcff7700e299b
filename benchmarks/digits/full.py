# The whole comparison on digits: all six directions between mnist, uci and printed, the three
# scenarios, the paper's three seeds, every registered method (digits-sized variants).
_base_ = ['../_base_/datasets/digits.py', '../_base_/methods/digits.py']

methods = ['pretrained', 'instdisc', 'cds', 'pcs', 'darl', 'dn2a', 'ucdir', 'coda', 'dgdir',
           'protoot', 'uem', 'simclr', 'moco_v2', 'pcl', 'dann', 'cdan', 'mdd', 'supervised_oracle',
           'ovanet', 'dance', 'uniot']
datasets = [
    dict(type='digits', pairs=[('mnist', 'uci'), ('uci', 'mnist'), ('mnist', 'printed'),
                               ('printed', 'mnist'), ('uci', 'printed'), ('printed', 'uci')]),
]
scenarios = ['closed', 'partial', 'open']
seeds = [2024, 2025, 2026]
evaluation = dict(type='uem')
work_dir = 'work_dirs/digits_full'
device = 'cpu'
