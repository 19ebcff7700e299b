# UniOT (Chang et al., NeurIPS 2022) at paper scale, adapted to label-free U2CDR: the source
# cross-entropy reads K-means pseudo-labels of the gallery's memory bank (gallery = UniOT's
# source, query domain = its target; see u2cdr/methods/uniot.py). From the released code
# (utils/lib.py, main.py, eval.py): unbalanced OT with eps 0.01 and marginal relaxation 0.5,
# adaptive filling with gamma 0.7, PCD Sinkhorn eps 0.05 / 3 iterations, a query is private
# when its best transported mass is at most 1/N. Read from the paper, not checked against its
# per-dataset configs: mu 0.7, lambda 0.1, temperature 0.1, memory fill 2000, K_t = 50 target
# prototypes (raise it for many-class datasets). Not UniOT's: instance discrimination
# (weight 1); K = Elbow on the initial gallery features (k <= 100); 50 epochs; cosine lr; the
# CCD term from epoch 1 (UniOT: after step 100). Initial model: UEM's ResNet-50 from ImageNet
# MoCo-v2 with its MLP head.
uniot = dict(
    type='uniot',
    backbone=dict(type='resnet50', in_channels=3,
                  checkpoint='checkpoints/moco_v2_800ep_pretrain.pth.tar'),
    head='mlp',
    low_dim=128,
    epochs=50,
    batch_size=36,
    lr=0.01,
    momentum=0.9,
    weight_decay=5e-4,
    temperature=0.07,
    bank_momentum=0.99,
    instance_weight=1.0,
    num_clusters='elbow',
    elbow_k_max=100,
    kmeans_iterations=20,
    recluster_every=1,
    classifier_temperature=0.1,
    source_weight=1.0,
    pcd_weight=0.1,
    ccd_weight=0.1,
    target_prototypes=50,
    ccd_fill=2000,
    ccd_start_epoch=1,
    gamma=0.7,
    mass_momentum=0.7,
    uot_epsilon=0.01,
    uot_relaxation=0.5,
    pcd_epsilon=0.05,
    pcd_iterations=3,
    head_lr_scale=1.0,
    num_workers=4,
)
