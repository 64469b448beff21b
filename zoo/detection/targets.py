"""CenterNet training targets of one image, in TensorFlow ops for `tf.data`.

This is data code (it runs inside `tf.data.Dataset.map`), so it uses
TensorFlow directly; the models, losses and decoding use `keras.ops` only.

Conventions (those of `zoo.attention_detector`): boxes are normalised
`[ymin, xmin, ymax, xmax]`; the output grid has `h x w` cells and grid
coordinates are normalised coordinates times `(h, w)`, so cell `(i, j)`
covers `[i, i + 1) x [j, j + 1)`. A box of grid centre `(cy, cx)` is
assigned to cell `(floor(cy), floor(cx))`.
"""

import tensorflow as tf

# Channel of the positive mask in the `size` and `offset` targets.
MASK_CHANNEL = 2


def gaussian_radius(height, width, min_overlap=0.7):
    """CenterNet's Gaussian radius of a box, in grid cells (float, not floored).

    The smallest of the three radii of CornerNet's `gaussian_radius` (Law and
    Deng, 2018) as CenterNet's code computes them (with its `(b + sqrt) / 2`
    form): roughly, how far a corner may move with the box still overlapping
    the original by `min_overlap`.

    Args:
        height: float tensor of box heights in grid cells (CenterNet passes
            them rounded up).
        width: float tensor of box widths, same shape.
        min_overlap: the IoU the radius keeps, in (0, 1).

    Returns:
        A float32 tensor of radii, the shape of `height`.
    """
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    area = height * width
    b1 = height + width
    c1 = area * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + tf.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * area
    r2 = (b2 + tf.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * area
    r3 = (b3 + tf.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return tf.minimum(tf.minimum(r1, r2), r3)


def centernet_targets(boxes, labels, grid_size, num_classes, min_overlap=0.7):
    """CenterNet targets of one image, as dense maps ready for `model.fit`.

    - `heatmap[i, j, c]`: for each object of class `c`, a Gaussian
      `exp(-(di ** 2 + dj ** 2) / (2 * sigma ** 2))` around its centre cell,
      cut to the `(2r + 1) x (2r + 1)` window, with
      `r = max(0, floor(gaussian_radius(ceil(h), ceil(w))))` and
      `sigma = (2r + 1) / 6` as in CenterNet's `draw_umich_gaussian`; the
      maximum over the objects of the class where they overlap. It is exactly
      1 at every object's centre cell (the focal loss's positives).
    - `size[i, j]`: `(height, width, mask)`: the box height and width in grid
      cells, then 1, at an object's centre cell; zeros elsewhere.
    - `offset[i, j]`: `(dy, dx, mask)`: `(cy - i, cx - j)` in `[0, 1)`, then
      1, at an object's centre cell; zeros elsewhere.

    The mask in the last channel (`MASK_CHANNEL`) tells the regression losses
    where the objects are, so every target is one tensor per model output and
    a batch of them is the `y` of `model.fit` as is. Where several objects
    share a centre cell, the smallest (by area) gives `size` and `offset`
    (the choice does not depend on their order).

    Objects with a label outside `[0, num_classes)` (e.g. `-1` padding) or an
    empty box (after clipping to `[0, 1]`) are ignored, so the boxes of a
    padded batch can be passed as they are; `N` may be 0.

    Args:
        boxes: `(N, 4)` float normalised `[ymin, xmin, ymax, xmax]`.
        labels: `(N,)` int class ids.
        grid_size: `(h, w)` of the output grid (ints or scalar int tensors):
            the image size divided by the model's stride (4).
        num_classes: number of classes `C` (a Python int).
        min_overlap: `min_overlap` of `gaussian_radius`.

    Returns:
        A dict of float32 tensors: `"heatmap"` `(h, w, C)`, `"size"`
        `(h, w, 3)` and `"offset"` `(h, w, 3)`.
    """
    boxes = tf.clip_by_value(tf.reshape(tf.cast(boxes, tf.float32), (-1, 4)), 0.0, 1.0)
    labels = tf.reshape(tf.cast(labels, tf.int32), (-1,))
    # One ignored object more: the reductions over objects then never see
    # an empty axis.
    boxes = tf.concat([boxes, tf.zeros((1, 4))], axis=0)
    labels = tf.concat([labels, [-1]], axis=0)
    h, w = grid_size[0], grid_size[1]
    fh, fw = tf.cast(h, tf.float32), tf.cast(w, tf.float32)

    ymin, xmin, ymax, xmax = tf.unstack(boxes * tf.stack([fh, fw, fh, fw]), axis=1)
    box_h, box_w = ymax - ymin, xmax - xmin
    valid = (labels >= 0) & (labels < num_classes) & (box_h > 0) & (box_w > 0)
    cy, cx = (ymin + ymax) / 2, (xmin + xmax) / 2
    iy = tf.clip_by_value(tf.cast(tf.floor(cy), tf.int32), 0, h - 1)
    ix = tf.clip_by_value(tf.cast(tf.floor(cx), tf.int32), 0, w - 1)
    radius = tf.floor(gaussian_radius(tf.math.ceil(box_h), tf.math.ceil(box_w)))
    radius = tf.maximum(radius, 0.0)
    sigma = (2 * radius + 1) / 6

    # `(N, h, 1)` and `(N, 1, w)` distances of every cell to each centre cell.
    dy = tf.cast(tf.range(h)[None, :] - iy[:, None], tf.float32)[:, :, None]
    dx = tf.cast(tf.range(w)[None, :] - ix[:, None], tf.float32)[:, None, :]
    r = radius[:, None, None]
    inside = (tf.abs(dy) <= r) & (tf.abs(dx) <= r) & valid[:, None, None]
    gaussian = tf.exp(-(dy**2 + dx**2) / (2 * sigma[:, None, None] ** 2))
    gaussian = tf.where(inside, gaussian, 0.0)
    segments = tf.where(valid, labels, -1)  # negative segments are dropped
    heatmap = tf.math.unsorted_segment_max(gaussian, segments, num_classes)
    heatmap = tf.transpose(tf.maximum(heatmap, 0.0), (1, 2, 0))  # empty: 0

    is_centre = (dy == 0) & (dx == 0) & valid[:, None, None]  # (N, h, w)
    area = tf.where(is_centre, (box_h * box_w)[:, None, None], float("inf"))
    owner = tf.argmin(area, axis=0, output_type=tf.int32)  # (h, w)
    mask = tf.cast(tf.reduce_any(is_centre, axis=0), tf.float32)[..., None]
    sizes = tf.gather(tf.stack([box_h, box_w], axis=1), owner)
    offsets = tf.stack([cy - tf.cast(iy, tf.float32), cx - tf.cast(ix, tf.float32)], 1)
    offsets = tf.gather(offsets, owner)
    return {
        "heatmap": heatmap,
        "size": tf.concat([sizes * mask, mask], axis=-1),
        "offset": tf.concat([offsets * mask, mask], axis=-1),
    }
