# UEM Table 6 (appendix): partial-set mAP@All on Office-31 (A→D … W→D) and DomainNet-7
# (Qu→Cl … Sk→Re); rows CDS, PCS, DARL, DN2A, UCDIR, CoDA, DGDIR, UEM (PCS, UCDIR and DGDIR given
# the true class count, App. B.2); seeds 2024-2026; protocol uem. all.py holds the settings
# (per-dataset variants `_dn`, `_o31`), the data (set office31.root and domainnet7.root) and
# the shared work dir.
# Run on a GPU: u2cdr run benchmarks/paper/table6.py --device cuda
_base_ = ['./all.py']

methods = ['cds', 'pcs', 'darl', 'darl_dn', 'dn2a', 'dn2a_dn', 'ucdir', 'ucdir_dn', 'coda_o31',
           'coda_dn', 'dgdir', 'uem', 'uem_dn']
datasets = ['office31', 'domainnet7']
scenarios = ['partial']
