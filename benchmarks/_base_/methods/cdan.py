# CDAN (Long et al., NeurIPS 2018) at paper scale, label-free: dann's recipe (instance
# discrimination for the source-classification loss; lr 0.001 with the discriminator at 10x,
# weight decay 5e-4, lambda ramp gamma 10, 1024 hidden units; see dann.py) with the discriminator
# conditioned on f (x) g, where g = softmax(z C^T / 0.1) over spherical K-means centroids of the
# two memory banks (re-clustered every epoch) in place of classifier predictions. K by the Elbow
# method (UEM's choice for unknown class counts; up to 100). CDAN's published choices: the
# randomized multilinear map above 4096 dimensions with d = 1024 (so T(x) with K > 32 clusters of
# the 128-d head), entropy conditioning on (CDAN+E, the paper's best variant).
cdan = dict(
    type='cdan',
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
    adversarial_weight=1.0,
    grl_schedule='dann',
    grl_gamma=10.0,
    discriminator_hidden=1024,
    discriminator_lr_scale=10.0,
    num_clusters='elbow',
    elbow_k_max=100,
    kmeans_iterations=20,
    centroids_from='both',
    assignment_temperature=0.1,
    entropy_conditioning=True,
    randomized='auto',
    randomize_above=4096,
    random_dim=1024,
    embedding='head',
    num_workers=4,
)
