# UEM at paper scale (Wang, Du, Zhu, NeurIPS 2024; uem.md §3). ResNet-50 from ImageNet MoCo-v2
# with its MLP head (2048-2048-128, loaded from the checkpoint as UCDIR does), SGD momentum 0.9,
# lr 2e-4 cosine to zero in each stage, weight decay 1e-4 (UCDIR), batch 64 per domain, tau 0.07,
# bank momentum 0.99, 100 IDSE + 50 CDSM epochs (Office-31 / Office-Home; `uem_domainnet` uses
# 200 IDSE epochs). Every option the paper leaves open keeps the class default (uem.md §8):
# whole-bank negatives, Elbow over k = 2..100 re-estimated every epoch, Eq. 9 merging as printed,
# normalised prototypes in logits, SEL weights not detached, gradient reversal with coefficient
# 1, a 256-wide domain classifier, head features ranked by Euclidean distance. u2cdr never
# downloads weights: put moco_v2_800ep_pretrain.pth.tar (facebookresearch/moco) at the path below.
uem = dict(
    type='uem',
    backbone=dict(type='resnet50', in_channels=3,
                  checkpoint='checkpoints/moco_v2_800ep_pretrain.pth.tar'),
    head='mlp',
    low_dim=128,
    idse_epochs=100,
    cdsm_epochs=50,
    batch_size=64,
    lr=2e-4,
    cdsm_lr=2e-4,
    momentum=0.9,
    weight_decay=1e-4,
    temperature=0.07,
    bank_momentum=0.99,
    renormalize_bank=True,
    negatives='bank',
    num_clusters='elbow',
    elbow_k_min=2,
    elbow_k_max=100,
    elbow_every=1,
    merge_scale=1.0,
    classifier_hidden=256,
    grl_schedule='constant',
    grl_coefficient=1.0,
    embedding='head',
    num_workers=4,
)
# Table 4's ablations (registered switches of UEM), same schedule.
uem_wo_pm = dict(uem, type='uem_wo_pm')
uem_wo_sel = dict(uem, type='uem_wo_sel')
uem_wo_spda = dict(uem, type='uem_wo_spda')
uem_wo_sn2m = dict(uem, type='uem_wo_sn2m')
# DomainNet-7: 200 IDSE epochs (uem.md §3.1), the rest as above.
uem_domainnet = dict(uem, idse_epochs=200)
uem_wo_pm_domainnet = dict(uem_wo_pm, idse_epochs=200)
uem_wo_sel_domainnet = dict(uem_wo_sel, idse_epochs=200)
uem_wo_spda_domainnet = dict(uem_wo_spda, idse_epochs=200)
uem_wo_sn2m_domainnet = dict(uem_wo_sn2m, idse_epochs=200)
