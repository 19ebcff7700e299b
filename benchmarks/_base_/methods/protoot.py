# ProtoOT (Li, Shi, Yu, Wang, AAAI 2024) at paper scale, from its Scripts/Office-Home.sh and code:
# ResNet-50 from ImageNet MoCo-v2 with its MLP head, Adam (AMSGrad) at a constant lr 2.5e-4,
# weight decay 5e-4, batch 64 per domain, 200 epochs, tau 0.2, key momentum 0.999, Sinkhorn
# epsilon 0.05 with 3 iterations, K-means niter 50 / nredo 20, cross-domain weight 0.01 from
# epoch 100. num_clusters='oracle': the script passes the class count (65; 7 on DomainNet).
# prototype_marginal='uniform' until the shared Sinkhorn accepts a column marginal (ProtoOT uses
# the K-means cluster proportions; see u2cdr/methods/protoot.py).
protoot = dict(
    type='protoot',
    backbone=dict(type='resnet50', in_channels=3,
                  checkpoint='checkpoints/moco_v2_800ep_pretrain.pth.tar'),
    head='mlp',
    low_dim=128,
    epochs=200,
    batch_size=64,
    lr=2.5e-4,
    weight_decay=5e-4,
    optimizer='adam',
    lr_schedule='constant',
    temperature=0.2,
    key_momentum=0.999,
    key_bn_splits=2,
    num_clusters='oracle',
    epsilon=0.05,
    sinkhorn_iterations=3,
    prototype_marginal='uniform',
    row_normalize_scores=True,
    augmentation_weight=1.0,
    neighbour_weight=0.5,
    prototype_weight=0.05,
    cross_domain_weight=0.01,
    cross_domain_start_epoch=100,
    kmeans_niter=50,
    kmeans_nredo=20,
    embedding='head',
    embed_encoder='key',
    num_workers=4,
)
