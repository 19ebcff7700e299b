# PCS (Yue et al., CVPR 2021) at paper scale, without its few-shot classifier parts: the released
# configs' settings (zhengzangw/PCS-FUDA, config/office/*.json and pcs/run.py defaults): 512-d
# linear head, lr 0.01 with the backbone at 0.1x (conv_lr_ratio), SGD momentum 0.9, weight decay
# 5e-4, batch 64 per domain, tau 0.1, bank momentum 0.5, spherical K-means (40 iterations) on each
# domain's bank before every epoch at k = C and 2C, each repeated 15 times (n_k), PCL
# concentrations. num_clusters='oracle' gives each domain its true class count: PCS's configs hard-
# code it (k = [31, 62] on Office-31) and UEM App. B.2 gives it in the partial setting; the flag is
# footnoted in every table. PCS trains until early stopping on labelled validation accuracy, which
# U2CDR has no labels for: 100 epochs here, UEM's stage-1 length. Initial model: UEM's ResNet-50
# from ImageNet MoCo-v2 (its 128-d MLP head does not fit the 512-d linear head and is dropped).
pcs = dict(
    type='pcs',
    backbone=dict(type='resnet50', in_channels=3,
                  checkpoint='checkpoints/moco_v2_800ep_pretrain.pth.tar'),
    head='linear',
    low_dim=512,
    epochs=100,
    batch_size=64,
    lr=0.01,
    backbone_lr_scale=0.1,
    momentum=0.9,
    weight_decay=5e-4,
    temperature=0.1,
    bank_momentum=0.5,
    renormalize_bank=True,
    negatives='bank',
    instance_weight=1.0,
    prototype_weight=1.0,
    cross_domain_weight=1.0,
    num_clusters='oracle',
    cluster_multiples=[1, 2],
    kmeans_repeats=15,
    kmeans_iterations=40,
    concentration='pcl',
    embedding='head',
    num_workers=4,
)
