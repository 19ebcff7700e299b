# UEM Table 8 (appendix): open-set Office-Home, the twelve directions A→C … R→P; each cell
# shared-set mAP@All / open-set accuracy; rows CDS, PCS, DARL, DN2A, UCDIR, CoDA, DGDIR, UEM;
# seeds 2024-2026; protocol uem. all.py holds the settings, the data (hub flwrlabs/office-home,
# or office_home.root) and the shared work dir.
# Run on a GPU: u2cdr run benchmarks/paper/table8.py --device cuda
_base_ = ['./all.py']

methods = ['cds', 'pcs', 'darl', 'dn2a', 'ucdir', 'coda', 'dgdir', 'uem']
datasets = ['office_home']
scenarios = ['open']
