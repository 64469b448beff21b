"""Reloading quantized sublayers that a layer builds in its own `build`."""

import keras


def _sublayers(layer, prefix="", seen=None):
    """`(path, sublayer)` of every layer held in attributes, depth first."""
    seen = set() if seen is None else seen
    for name, value in sorted(vars(layer).items()):
        if not isinstance(value, keras.layers.Layer) or id(value) in seen:
            continue
        seen.add(id(value))
        path = f"{prefix}{name}"
        yield path, value
        yield from _sublayers(value, f"{path}.", seen)


class QuantizedSublayers:
    """Mixin: records which sublayers are quantized, and re-quantizes them on load.

    Keras builds a loaded layer with `build_from_config` and then assigns the
    saved variables; a layer that creates `Dense`/`EinsumDense`/`Embedding`
    sublayers in its `build` would create them float, and the int8 variables
    of a quantized model would not fit. The build config keeps the
    quantization mode of every quantized sublayer (by attribute path), and
    `build_from_config` quantizes them again after building.
    """

    def get_build_config(self):
        config = super().get_build_config()
        if config is None or not self.built:
            return config
        modes = {
            path: sub.quantization_mode
            for path, sub in _sublayers(self)
            if getattr(sub, "quantization_mode", None) is not None
        }
        return {**config, "quantized_sublayers": modes} if modes else config

    def build_from_config(self, config):
        super().build_from_config(config)
        for path, mode in (config or {}).get("quantized_sublayers", {}).items():
            sub = self
            for name in path.split("."):
                sub = getattr(sub, name)
            sub.quantize(mode)
