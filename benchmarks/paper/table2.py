# UEM Table 2: partial-set mAP@All on Office-Home (the query domain keeps a random half of the
# gallery's classes), the twelve directions A→C … R→P; rows CDS, PCS, DARL, DN2A, UCDIR, CoDA,
# DGDIR, UEM (PCS, UCDIR and DGDIR given the true class count, App. B.2); seeds 2024-2026;
# protocol uem. all.py holds the settings, the data (hub flwrlabs/office-home, or
# office_home.root) and the shared work dir.
# Run on a GPU: u2cdr run benchmarks/paper/table2.py --device cuda
_base_ = ['./all.py']

methods = ['cds', 'pcs', 'darl', 'dn2a', 'ucdir', 'coda', 'dgdir', 'uem']
datasets = ['office_home']
scenarios = ['partial']
