# Every grid of the UEM paper in one command (Wang, Du & Zhu, NeurIPS 2024): Tables 1-8 at paper
# scale, the union of benchmarks/paper/table{1..8}.py and ablation.py, each cell once.
#   Table 1 closed  Office-31, DomainNet-7    Table 5 closed  Office-Home
#   Table 2 partial Office-Home               Table 6 partial Office-31, DomainNet-7
#   Table 3 open    DomainNet-7               Table 7 open    Office-31
#   Table 8 open    Office-Home               Table 4 open    UEM ablations, all three datasets
# Rows are the paper's, in its order: CDS, PCS (CDRL), DARL, DN2A (UDG), UCDIR, CoDA, DGDIR
# (UCDR), UEM; all are registered. Registered methods the paper does not run (pretrained,
# instdisc, protoot) are left out: add them with --cfg-options "methods=[...]".
# Directions are each dataset's `pairs`, in the paper's column order (_base_/datasets/*.py);
# seeds 2024-2026; protocol `uem` (CoDA's mAP@All; open set: shared-set mAP@All and open-set
# accuracy). The table configs inherit this file and narrow methods, datasets and scenarios, so
# a cell two tables share (UEM's open-set cells: Tables 3/7/8 and 4) has one config, one key and
# one folder under the shared work dir; every table's results land in work_dirs/paper.
# Run on a GPU: u2cdr run benchmarks/paper/all.py --device cuda, after setting the data below
# and putting moco_v2_800ep_pretrain.pth.tar under checkpoints/ (u2cdr never downloads weights).
_base_ = ['../_base_/datasets/office31.py', '../_base_/datasets/office_home.py',
          '../_base_/datasets/domainnet7.py', '../_base_/methods/cds.py',
          '../_base_/methods/pcs.py', '../_base_/methods/darl.py', '../_base_/methods/dn2a.py',
          '../_base_/methods/ucdir.py', '../_base_/methods/coda.py', '../_base_/methods/dgdir.py',
          '../_base_/methods/uem.py']

# Data: each dataset loads from a local folder ROOT/<domain>/<class>/<image> (`root`, which wins
# when set), from .parquet/.arrow files with image/label/domain columns (`data_files`), or from
# the hub (`hub_id`, online only). Set a root with --cfg-options office31.root=/data/office31.
# Office-31: no hub copy with image/label/domain columns is known; root holds amazon/, dslr/,
# webcam/ (the original <domain>/images/<class>/ layout works too).
office31 = dict(hub_id=None, root=None)
# Office-Home: the hub's flwrlabs/office-home, or root holding Art/, Clipart/, Product/,
# 'Real World'/ as in the original archive.
office_home = dict(hub_id='flwrlabs/office-home', root=None)
# DomainNet-7 (UCDIR's 7 classes; other class folders are skipped): no hub copy is known to
# have this layout; root holds clipart/, infograph/, painting/, quickdraw/, real/, sketch/.
domainnet7 = dict(hub_id=None, root=None)

# Paper-scale settings (_base_/methods/*.py); where a method's own scripts or the paper set a
# dataset-specific value, the variant carries it under its own grid name: `_dn` on DomainNet-7
# (200 epochs where the Office runs use UEM's 100, UCDIR's domainnet.sh loss settings, CoDA
# with 10 base clusters, UEM's 200 IDSE epochs), `_o31` on Office-31 (CoDA with 50 clusters,
# its scripts' ~1.5x the class count; `coda` keeps Office-Home's 100).
method_library = dict(
    cds=_base_.cds,
    pcs=_base_.pcs,
    darl=_base_.darl,
    darl_dn=dict(_base_.darl, epochs=200),
    dn2a=_base_.dn2a,
    dn2a_dn=dict(_base_.dn2a, epochs=200),
    ucdir=_base_.ucdir,
    ucdir_dn=dict(_base_.ucdir, self_entropy_temperature=0.1, self_entropy_weight=0.5,
                  distofdist_weight=0.1),
    coda=_base_.coda,
    coda_o31=dict(_base_.coda, num_clusters=50),
    coda_dn=dict(_base_.coda, num_clusters=10),
    dgdir=_base_.dgdir,
    uem=_base_.uem,
    uem_dn=_base_.uem_domainnet,
    # Table 4 (the same entries as ablation.py, so their cells coincide).
    uem_wo_pm=_base_.uem_wo_pm,
    uem_wo_sel=_base_.uem_wo_sel,
    uem_wo_spda=_base_.uem_wo_spda,
    uem_wo_sn2m=_base_.uem_wo_sn2m,
    uem_wo_pm_dn=_base_.uem_wo_pm_domainnet,
    uem_wo_sel_dn=_base_.uem_wo_sel_domainnet,
    uem_wo_spda_dn=_base_.uem_wo_spda_domainnet,
    uem_wo_sn2m_dn=_base_.uem_wo_sn2m_domainnet,
)
# The grid entry behind each paper row on each dataset, in the paper's row order.
_paper_rows = dict(
    office31=['cds', 'pcs', 'darl', 'dn2a', 'ucdir', 'coda_o31', 'dgdir', 'uem'],
    office_home=['cds', 'pcs', 'darl', 'dn2a', 'ucdir', 'coda', 'dgdir', 'uem'],
    domainnet7=['cds', 'pcs', 'darl_dn', 'dn2a_dn', 'ucdir_dn', 'coda_dn', 'dgdir', 'uem_dn'],
)
_ablation_rows = dict(
    office31=['uem_wo_pm', 'uem_wo_sel', 'uem_wo_spda', 'uem_wo_sn2m'],
    office_home=['uem_wo_pm', 'uem_wo_sel', 'uem_wo_spda', 'uem_wo_sn2m'],
    domainnet7=['uem_wo_pm_dn', 'uem_wo_sel_dn', 'uem_wo_spda_dn', 'uem_wo_sn2m_dn'],
)
# Every dataset's rows come out in the paper's order (cells expand per dataset, pair, scenario,
# then in this order); entries of other datasets are excluded below.
methods = ['cds', 'pcs', 'darl', 'darl_dn', 'dn2a', 'dn2a_dn', 'ucdir', 'ucdir_dn', 'coda',
           'coda_o31', 'coda_dn', 'dgdir', 'uem', 'uem_dn', 'uem_wo_pm', 'uem_wo_sel',
           'uem_wo_spda', 'uem_wo_sn2m', 'uem_wo_pm_dn', 'uem_wo_sel_dn', 'uem_wo_spda_dn',
           'uem_wo_sn2m_dn']
datasets = ['office31', 'office_home', 'domainnet7']
scenarios = ['closed', 'partial', 'open']
seeds = [2024, 2025, 2026]
evaluation = dict(type='uem')
# Each entry only on its own datasets; the ablations only in the open set (Table 4).
exclude = ([dict(method=m, dataset=d) for d in _paper_rows for m in methods
            if m not in _paper_rows[d] + _ablation_rows[d]]
           + [dict(method=m, scenario=s)
              for m in dict.fromkeys(m for rows in _ablation_rows.values() for m in rows)
              for s in ('closed', 'partial')])
work_dir = 'work_dirs/paper'
