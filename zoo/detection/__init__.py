"""Object detection pieces shared by the detectors (CenterNet conventions).

- `zoo.detection.targets`: training targets of one image (TensorFlow ops, for
  `tf.data`);
- `zoo.detection.losses`: the heatmap focal loss, the centre L1 losses and
  the GIoU loss (`keras.ops`);
- `zoo.detection.decoding`: boxes, scores and classes from a detector's
  outputs (`keras.ops`).
"""
