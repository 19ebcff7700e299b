# The supervised oracle at paper scale: trained with the TRUE labels of both domains (an upper
# bound, marked and unranked in every table). SupCon (Khosla et al., NeurIPS 2020) on the union of
# both domains' batches, tau 0.1 and weight decay 1e-4 as published; from UEM's initial model
# (ResNet-50, ImageNet MoCo-v2, its 128-d MLP head) so that it bounds the same starting point.
# Khosla et al. train from scratch with LARS at batch 1024+; fine-tuning with SGD at batch 64 per
# domain takes a fine-tuning rate instead: lr 0.01, momentum 0.9, cosine to zero, 100 epochs
# (UEM's stage-1 length). Private queries (open set): nearest query-domain class mean of a class
# the gallery lacks (training labels).
supervised_oracle = dict(
    type='supervised_oracle',
    backbone=dict(type='resnet50', in_channels=3,
                  checkpoint='checkpoints/moco_v2_800ep_pretrain.pth.tar'),
    head='mlp',
    low_dim=128,
    epochs=100,
    batch_size=64,
    lr=0.01,
    momentum=0.9,
    weight_decay=1e-4,
    temperature=0.1,
    cross_domain_positives=True,
    private_detection='class_means',
    embedding='head',
    num_workers=4,
)
