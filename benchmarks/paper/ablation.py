# UEM Table 4: the full method and its four ablations (w/o P.M., w/o SEL, w/o SPDA, w/o SN2M) in
# the open-set setting on Office-31, Office-Home and DomainNet-7, the paper's three seeds.
# Paper scale (benchmarks/_base_/methods/uem.py): ResNet-50 from MoCo-v2, 100 IDSE epochs on
# Office and 200 on DomainNet (the `*_dn` rows; each dataset only runs its own schedule), then 50
# CDSM epochs. Table rows: open-set shared mAP@All and open-set accuracy (App. B.1 detector).
# Run on a GPU: u2cdr run benchmarks/paper/ablation.py --device cuda (set each dataset's root),
# then u2cdr table work_dirs/paper --layout ablation --paper.
_base_ = ['../_base_/datasets/office31.py', '../_base_/datasets/office_home.py',
          '../_base_/datasets/domainnet7.py', '../_base_/methods/uem.py']

method_library = dict(
    uem={{_base_.uem}},
    uem_wo_pm={{_base_.uem_wo_pm}},
    uem_wo_sel={{_base_.uem_wo_sel}},
    uem_wo_spda={{_base_.uem_wo_spda}},
    uem_wo_sn2m={{_base_.uem_wo_sn2m}},
    uem_dn={{_base_.uem_domainnet}},
    uem_wo_pm_dn={{_base_.uem_wo_pm_domainnet}},
    uem_wo_sel_dn={{_base_.uem_wo_sel_domainnet}},
    uem_wo_spda_dn={{_base_.uem_wo_spda_domainnet}},
    uem_wo_sn2m_dn={{_base_.uem_wo_sn2m_domainnet}},
)
methods = ['uem', 'uem_wo_pm', 'uem_wo_sel', 'uem_wo_spda', 'uem_wo_sn2m',
           'uem_dn', 'uem_wo_pm_dn', 'uem_wo_sel_dn', 'uem_wo_spda_dn', 'uem_wo_sn2m_dn']
datasets = ['office31', 'office_home', 'domainnet7']
scenarios = ['open']
seeds = [2024, 2025, 2026]
evaluation = dict(type='uem')
exclude = ([dict(method=m, dataset='domainnet7') for m in methods[:5]]
           + [dict(method=m, dataset=d) for m in methods[5:] for d in ('office31', 'office_home')])
# The work dir all.py and the table configs share: the full UEM's open-set cells are also
# Tables 3, 7 and 8's (same config, same key, same folder), so they run once.
work_dir = 'work_dirs/paper'
