# UEM Table 1: closed-set mAP@All on Office-31 (A→D, A→W, D→A, D→W, W→A, W→D) and DomainNet-7
# (Qu→Cl, Cl→Pa, Pa→In, In→Sk, Sk→Re); rows CDS, PCS, DARL, DN2A, UCDIR, CoDA, DGDIR, UEM; seeds
# 2024-2026; protocol uem. all.py holds the settings (paper scale, per-dataset variants `_dn`,
# `_o31`), the data (set office31.root and domainnet7.root) and the shared work dir.
# Run on a GPU: u2cdr run benchmarks/paper/table1.py --device cuda
_base_ = ['./all.py']

methods = ['cds', 'pcs', 'darl', 'darl_dn', 'dn2a', 'dn2a_dn', 'ucdir', 'ucdir_dn', 'coda_o31',
           'coda_dn', 'dgdir', 'uem', 'uem_dn']
datasets = ['office31', 'domainnet7']
scenarios = ['closed']
