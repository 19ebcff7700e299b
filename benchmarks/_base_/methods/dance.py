# DANCE (Saito et al., NeurIPS 2020) at paper scale, adapted to label-free U2CDR: the source
# cross-entropy reads K-means pseudo-labels of the gallery's memory bank (gallery = DANCE's
# source, query domain = its target; see u2cdr/methods/dance.py). Released settings
# (VisionLearningGroup/DANCE, configs/*.yaml, train_dance.py): batch 36 per domain, lr 0.01,
# SGD momentum 0.9, weight decay 5e-4, temperature 0.05, eta 0.05 for neighbourhood clustering
# and entropy separation, margin 0.5, threshold rho = log(K)/2 (the configs' thr), unknown when
# the entropy over the source prototypes exceeds rho. Not DANCE's: instance discrimination
# (weight 1); K = Elbow on the initial gallery features (k <= 100); 50 epochs; cosine learning
# rate. Initial model: UEM's ResNet-50 from ImageNet MoCo-v2 with its MLP head.
dance = dict(
    type='dance',
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
    classifier_temperature=0.05,
    source_weight=1.0,
    neighbourhood_weight=0.05,
    separation_weight=0.05,
    entropy_threshold=None,
    separation_margin=0.5,
    head_lr_scale=1.0,
    num_workers=4,
)
