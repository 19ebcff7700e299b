# UEM's ablation (Wang, Du & Zhu, NeurIPS 2024, Table 4) on digits, offline: the four variants
# w/o P.M., w/o SEL, w/o SPDA, w/o SN2M and the full UEM, open set, mnist <-> uci, one seed
# (digits-sized schedules from benchmarks/_base_/methods/digits.py; about 10 minutes on CPU).
#   u2cdr run benchmarks/digits/ablation.py
#   u2cdr table work_dirs/digits/ablation --layout ablation [--paper]
_base_ = ['../_base_/datasets/digits.py', '../_base_/methods/digits.py']

methods = ['uem_wo_pm', 'uem_wo_sel', 'uem_wo_spda', 'uem_wo_sn2m', 'uem']
datasets = ['digits']
scenarios = ['open']
seeds = [2024]
evaluation = dict(type='uem')
work_dir = 'work_dirs/digits/ablation'
device = 'cpu'
