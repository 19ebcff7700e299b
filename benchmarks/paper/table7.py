# UEM Table 7 (appendix): open-set Office-31, A→D, A→W, D→A, D→W, W→A, W→D; each cell shared-set
# mAP@All / open-set accuracy; rows CDS, PCS, DARL, DN2A, UCDIR, CoDA, DGDIR, UEM; seeds
# 2024-2026; protocol uem. all.py holds the settings (CoDA's Office-31 variant `coda_o31`), the
# data (set office31.root) and the shared work dir.
# Run on a GPU: u2cdr run benchmarks/paper/table7.py --device cuda
_base_ = ['./all.py']

methods = ['cds', 'pcs', 'darl', 'dn2a', 'ucdir', 'coda_o31', 'dgdir', 'uem']
datasets = ['office31']
scenarios = ['open']
