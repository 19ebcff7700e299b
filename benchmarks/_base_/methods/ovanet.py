# OVANet (Saito & Saenko, ICCV 2021) at paper scale, adapted to label-free U2CDR: the source
# cross-entropy and OVA loss read K-means pseudo-labels of the gallery's memory bank (gallery =
# OVANet's source, query domain = its target; see u2cdr/methods/ovanet.py). Released settings
# (VisionLearningGroup/OVANet, configs/*.yaml, train.py): batch 36 per domain, lr 0.01, SGD
# momentum 0.9, weight decay 5e-4, temperature 0.05, OVA loss x0.5, open-set entropy x0.1
# (--multi), unknown when the top class's OVA positive probability < 0.5. Not OVANet's:
# instance discrimination (weight 1) trains the encoder the pseudo-labels come from; K = Elbow
# on the initial gallery features (k <= 100, above every class count of the paper's datasets);
# 50 epochs (OVANet: 10,000 steps of 36, about 50 Office-Home epochs); cosine learning rate.
# Initial model: UEM's ResNet-50 from ImageNet MoCo-v2 with its MLP head.
ovanet = dict(
    type='ovanet',
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
    ova_weight=0.5,
    open_entropy_weight=0.1,
    known_threshold=0.5,
    head_lr_scale=1.0,
    num_workers=4,
)
