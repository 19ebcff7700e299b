# UEM Table 3: open-set DomainNet-7 (the gallery keeps a random half of the query's classes),
# Qu→Cl, Cl→Pa, Pa→In, In→Sk, Sk→Re; each cell shared-set mAP@All / open-set accuracy; rows
# CDS, PCS, DARL, DN2A, UCDIR, CoDA, DGDIR, UEM (methods without a detector of their own get the
# paper's generic K-means rule, App. B.2); seeds 2024-2026; protocol uem. all.py holds the
# settings (DomainNet variants `_dn`), the data (set domainnet7.root) and the shared work dir.
# Run on a GPU: u2cdr run benchmarks/paper/table3.py --device cuda
_base_ = ['./all.py']

methods = ['cds', 'pcs', 'darl_dn', 'dn2a_dn', 'ucdir_dn', 'coda_dn', 'dgdir', 'uem_dn']
datasets = ['domainnet7']
scenarios = ['open']
