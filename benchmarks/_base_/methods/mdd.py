# MDD (Zhang et al., ICML 2019) at paper scale, label-free: dann's recipe (instance
# discrimination on both domains; lr 0.001 with the heads at 10x, weight decay 5e-4; see dann.py)
# plus MDD's classifier pair: f trained on pseudo-labels (nearest spherical K-means centroid of
# each query image's memory-bank entry, re-clustered every epoch; K by the Elbow method, up to
# 100), f' adversarial through gradient reversal ramping to 0.1 as in the released MDD code, heads
# 1024 wide, margin gamma 4 (MDD tunes gamma per task).
mdd = dict(
    type='mdd',
    backbone=dict(type='resnet50', in_channels=3,
                  checkpoint='checkpoints/moco_v2_800ep_pretrain.pth.tar'),
    head='mlp',
    low_dim=128,
    epochs=100,
    batch_size=64,
    lr=1e-3,
    momentum=0.9,
    weight_decay=5e-4,
    temperature=0.07,
    bank_momentum=0.99,
    renormalize_bank=True,
    negatives='bank',
    adversarial_weight=0.1,
    grl_schedule='dann',
    grl_gamma=10.0,
    margin=4.0,
    classifier_weight=1.0,
    classifier_hidden=1024,
    classifier_lr_scale=10.0,
    num_clusters='elbow',
    elbow_k_max=100,
    kmeans_iterations=20,
    centroids_from='query',
    embedding='head',
    num_workers=4,
)
